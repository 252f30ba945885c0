import { Field, ID, Int, ObjectType, registerEnumType } from 'type-graphql';
import { PageInfo } from '../common/common.types.js';

export enum InteractionChannel {
  CALL = 'call',
  EMAIL = 'email',
  WECHAT = 'wechat',
  VISIT = 'visit',
}
registerEnumType(InteractionChannel, { name: 'InteractionChannel' });

@ObjectType({ simpleResolvers: true, description: 'A contact with a customer: a call, email, WeChat message or visit.' })
export class Interaction {
  @Field(() => ID)
  id!: string;

  @Field(() => InteractionChannel, { nullable: true })
  channel!: InteractionChannel | null;

  @Field(() => String, { nullable: true })
  summary!: string | null;

  @Field(() => String, { nullable: true, description: 'Who had the interaction (principal id).' })
  principalId!: string | null;

  @Field(() => String, { nullable: true, description: 'ISO-8601 timestamp.' })
  occurredAt!: string | null;
}

@ObjectType({ simpleResolvers: true })
export class InteractionEdge {
  @Field(() => String)
  cursor!: string;

  @Field(() => Interaction)
  node!: Interaction;
}

@ObjectType({ simpleResolvers: true })
export class InteractionConnection {
  @Field(() => [InteractionEdge])
  edges!: InteractionEdge[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;

  @Field(() => Int)
  totalCount!: number;
}
