import { GraphQLJSONObject } from 'graphql-scalars';
import { Field, ID, InputType, Int, ObjectType, registerEnumType } from 'type-graphql';
import { PageInfo, Purpose } from '../common/common.types.js';
import { CustomerListFilter } from '../customer/customer.type.js';

export enum ExportState {
  PENDING = 'pending',
  APPROVED = 'approved',
  REJECTED = 'rejected',
  REVOKED = 'revoked',
  EXPIRED = 'expired',
  EXHAUSTED = 'exhausted',
}
registerEnumType(ExportState, { name: 'ExportState', description: 'Where a request stands; an approved grant expires or runs out of rows.' });

export enum ExportKind {
  DATASET = 'dataset',
  CUSTOMERS = 'customers',
}
registerEnumType(ExportKind, { name: 'ExportKind' });

@InputType({ description: 'An identified customer list, read as the requester reads it (same rows, same masking).' })
export class ExportCustomersInput {
  @Field(() => CustomerListFilter, { nullable: true })
  filter?: CustomerListFilter;

  @Field(() => [String], { description: 'Customer fields, e.g. ["name", "city", "tier", "phone"] (phone comes masked).' })
  fields!: string[];
}

@InputType()
export class RequestExportInput {
  @Field(() => String, { nullable: true, description: 'A dataset of policies/datasets/ (approved by the dpo).' })
  dataset?: string;

  @Field(() => ExportCustomersInput, { nullable: true, description: 'A customer list (approved by the department manager).' })
  customers?: ExportCustomersInput;

  @Field(() => Purpose)
  purpose!: Purpose;

  @Field(() => Int, { description: 'The most rows this export may ever send.' })
  rowLimit!: number;

  @Field(() => String, { description: 'Why: read by the approver (10–500 characters).' })
  reason!: string;
}

@ObjectType({ simpleResolvers: true })
export class ExportRequest {
  @Field(() => ID)
  id!: string;

  @Field(() => ExportKind)
  kind!: ExportKind;

  @Field(() => String, { nullable: true })
  dataset!: string | null;

  @Field(() => GraphQLJSONObject, { nullable: true, description: 'kind CUSTOMERS: {filter, fields}.' })
  customers!: Record<string, unknown> | null;

  @Field(() => String)
  purpose!: string;

  @Field(() => Int)
  rowLimit!: number;

  @Field(() => Int)
  rowsExported!: number;

  @Field(() => ExportState)
  state!: ExportState;

  @Field(() => String)
  reason!: string;

  @Field(() => String)
  requestedBy!: string;

  @Field(() => String)
  requestedAt!: string;

  @Field(() => String, { nullable: true })
  decidedBy!: string | null;

  @Field(() => String, { nullable: true })
  decidedAt!: string | null;

  @Field(() => String, { nullable: true })
  decisionReason!: string | null;

  @Field(() => String, { nullable: true })
  expiresAt!: string | null;

  @Field(() => String, { nullable: true, description: 'Where an approved grant is pulled from: GET with the holder\'s token (NDJSON or CSV).' })
  downloadPath!: string | null;
}

@ObjectType({ simpleResolvers: true })
export class ExportRequestConnection {
  @Field(() => [ExportRequest])
  nodes!: ExportRequest[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;
}
