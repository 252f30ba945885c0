import { Field, ID, Int, ObjectType } from 'type-graphql';
import { PageInfo } from '../common/common.types.js';

@ObjectType({ simpleResolvers: true, description: 'An order of a customer; reached only through a permitted customer.' })
export class Order {
  @Field(() => ID)
  id!: string;

  @Field(() => String, { nullable: true, description: 'Decimal amount as a string, e.g. "1299.00".' })
  amount!: string | null;

  @Field(() => String, { nullable: true })
  currency!: string | null;

  @Field(() => String, { nullable: true })
  product!: string | null;

  @Field(() => String, { nullable: true })
  channel!: string | null;

  @Field(() => String, { nullable: true })
  status!: string | null;

  @Field(() => String, { nullable: true, description: 'ISO-8601 timestamp.' })
  placedAt!: string | null;
}

@ObjectType({ simpleResolvers: true })
export class OrderEdge {
  @Field(() => String)
  cursor!: string;

  @Field(() => Order)
  node!: Order;
}

@ObjectType({ simpleResolvers: true })
export class OrderConnection {
  @Field(() => [OrderEdge])
  edges!: OrderEdge[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;

  @Field(() => Int)
  totalCount!: number;
}
