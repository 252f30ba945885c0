import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import type { RenderedRow } from '../../authz/reader.js';
import { PageInfo, SortDirection } from '../common/common.types.js';

/**
 * A customer as the caller may see it. Every field is nullable: a field the
 * policy grants only on some rows is null elsewhere, with a FORBIDDEN error at
 * its path. Maskable fields (name, phone, email, address, idNumber, birthDate)
 * are resolved in CustomerResolver and take an optional purpose.
 */
@ObjectType({ simpleResolvers: true })
export class Customer {
  @Field(() => ID)
  id!: string;

  @Field(() => String, { nullable: true })
  province!: string | null;

  @Field(() => String, { nullable: true })
  city!: string | null;

  @Field(() => String, { nullable: true })
  gender!: string | null;

  @Field(() => String, { nullable: true })
  tier!: string | null;

  @Field(() => String, { nullable: true })
  segment!: string | null;

  @Field(() => String, { nullable: true })
  ownerId!: string | null;

  @Field(() => String, { nullable: true })
  department!: string | null;

  @Field(() => String, { nullable: true, description: 'ISO-8601 timestamp.' })
  createdAt!: string | null;

  @Field(() => String, { nullable: true, description: 'ISO-8601 timestamp.' })
  updatedAt!: string | null;

  /** The policed row behind this object (not part of the schema). */
  __row!: RenderedRow;
}

@ObjectType({ simpleResolvers: true })
export class CustomerEdge {
  @Field(() => String)
  cursor!: string;

  @Field(() => Customer)
  node!: Customer;
}

@ObjectType({ simpleResolvers: true })
export class CustomerConnection {
  @Field(() => [CustomerEdge])
  edges!: CustomerEdge[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;

  @Field(() => Int, { description: 'Rows the caller may see that match the filter (row policy applied).' })
  totalCount!: number;
}

export enum CustomerOrderField {
  ID = 'id',
  NAME = 'name',
  CITY = 'city',
  PROVINCE = 'province',
  TIER = 'tier',
  SEGMENT = 'segment',
  CREATED_AT = 'createdAt',
  UPDATED_AT = 'updatedAt',
}
registerEnumType(CustomerOrderField, { name: 'CustomerOrderField' });

@InputType()
export class CustomerOrder {
  @Field(() => CustomerOrderField)
  field!: CustomerOrderField;

  @Field(() => SortDirection, { defaultValue: SortDirection.ASC })
  direction!: SortDirection;
}

@InputType('ExportCustomerFilter', { description: 'List attributes only: exports never filter by a personal value.' })
export class CustomerListFilter {
  @Field(() => String, { nullable: true })
  city?: string;

  @Field(() => String, { nullable: true })
  province?: string;

  @Field(() => String, { nullable: true })
  tier?: string;

  @Field(() => String, { nullable: true })
  segment?: string;

  @Field(() => String, { nullable: true })
  ownerId?: string;
}

@InputType({ description: 'Every filter needs the `filter` permission on its field; phone and email need `lookup`.' })
export class CustomerFilter extends CustomerListFilter {
  @Field(() => String, { nullable: true, description: 'Exact name.' })
  name?: string;

  @Field(() => String, { nullable: true, description: 'Exact lookup by phone through the blind index; never reveals it.' })
  phone?: string;

  @Field(() => String, { nullable: true, description: 'Exact lookup by email through the blind index; never reveals it.' })
  email?: string;
}

@InputType({ description: 'Rectify contact fields; each needs `update` on that field of the row.' })
export class UpdateCustomerInput {
  @Field(() => String, { nullable: true })
  phone?: string;

  @Field(() => String, { nullable: true })
  email?: string;

  @Field(() => String, { nullable: true })
  address?: string;
}
