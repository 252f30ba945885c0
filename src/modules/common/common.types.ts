import { Field, ObjectType, registerEnumType } from 'type-graphql';

/** Declared purposes of a reveal; must match policies/purposes.yaml (checked at start). */
export enum Purpose {
  CONTACT = 'contact',
  DSR = 'dsr',
  FRAUD = 'fraud',
  SUPPORT = 'support',
  ANALYTICS = 'analytics',
}
registerEnumType(Purpose, { name: 'Purpose', description: 'Why a raw value is requested; recorded in the audit trail.' });

export enum SortDirection {
  ASC = 'asc',
  DESC = 'desc',
}
registerEnumType(SortDirection, { name: 'SortDirection' });

@ObjectType({ simpleResolvers: true })
export class PageInfo {
  @Field(() => Boolean)
  hasNextPage!: boolean;

  @Field(() => String, { nullable: true })
  endCursor!: string | null;
}
