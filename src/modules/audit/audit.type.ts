import { Field, Float, InputType, Int, ObjectType } from 'type-graphql';
import { PageInfo } from '../common/common.types.js';

@ObjectType({ simpleResolvers: true, description: 'Field names by how they were rendered (names only, never values).' })
export class AuditFieldSet {
  @Field(() => [String])
  raw!: string[];

  @Field(() => [String])
  masked!: string[];

  @Field(() => [String])
  revealed!: string[];

  @Field(() => [String])
  denied!: string[];
}

@ObjectType({ simpleResolvers: true, description: 'One access decision in the hash-chained audit trail.' })
export class AuditEvent {
  @Field(() => Float, { description: 'Position in the chain (contiguous from 1).' })
  seq!: number;

  @Field(() => String, { description: 'ISO-8601 timestamp.' })
  at!: string;

  @Field(() => String, { nullable: true })
  traceId!: string | null;

  @Field(() => String, { nullable: true })
  spanId!: string | null;

  @Field(() => String)
  principalId!: string;

  @Field(() => [String])
  roles!: string[];

  @Field(() => String, { description: 'read | reveal | write | export | deny | audit_read' })
  action!: string;

  @Field(() => String)
  subject!: string;

  @Field(() => [String], { description: 'Ids of the records touched.' })
  recordIds!: string[];

  @Field(() => AuditFieldSet)
  fields!: AuditFieldSet;

  @Field(() => String, { nullable: true })
  purpose!: string | null;

  @Field(() => String, { description: 'allow | deny' })
  decision!: string;

  @Field(() => String, { nullable: true })
  reason!: string | null;

  @Field(() => String, { description: 'sha-256 of the policy bundle that decided.' })
  policyVersion!: string;

  @Field(() => String, { description: 'Hex sha-256 chaining this record to the previous one.' })
  hash!: string;
}

@ObjectType({ simpleResolvers: true })
export class AuditEventEdge {
  @Field(() => String)
  cursor!: string;

  @Field(() => AuditEvent)
  node!: AuditEvent;
}

@ObjectType({ simpleResolvers: true })
export class AuditEventConnection {
  @Field(() => [AuditEventEdge])
  edges!: AuditEventEdge[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;
}

@InputType()
export class AuditEventFilter {
  @Field(() => String, { nullable: true })
  principalId?: string;

  @Field(() => String, { nullable: true, description: 'Records touching this customer id.' })
  customerId?: string;

  @Field(() => String, {
    nullable: true,
    description: 'read | reveal | write | export | deny | audit_read; reveal finds every record that revealed raw values: reveal records, and reads whose revealed fields are not empty (a read whose one reveal covered all its rows carries the purpose itself, with no reveal record)',
  })
  action?: string;

  @Field(() => String, { nullable: true, description: 'allow | deny' })
  decision?: string;

  @Field(() => String, { nullable: true, description: 'ISO-8601, inclusive.' })
  from?: string;

  @Field(() => String, { nullable: true, description: 'ISO-8601, exclusive.' })
  to?: string;
}

@ObjectType({ simpleResolvers: true })
export class PrincipalAccessSummary {
  @Field(() => String)
  principalId!: string;

  @Field(() => Int)
  reads!: number;

  @Field(() => Int, { description: 'Distinct records read or revealed.' })
  records!: number;

  @Field(() => Int)
  reveals!: number;

  @Field(() => Int)
  denials!: number;
}

@ObjectType({ simpleResolvers: true })
export class PurposeCount {
  @Field(() => String, { nullable: true })
  purpose!: string | null;

  @Field(() => Int)
  count!: number;
}

@ObjectType({ simpleResolvers: true })
export class AccessSummaryResult {
  @Field(() => [PrincipalAccessSummary])
  byPrincipal!: PrincipalAccessSummary[];

  @Field(() => [PurposeCount])
  revealsByPurpose!: PurposeCount[];

  @Field(() => Int)
  denials!: number;
}
