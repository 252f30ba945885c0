import { GraphQLJSONObject } from 'graphql-scalars';
import { Field, Int, ObjectType } from 'type-graphql';
import { PageInfo } from '../common/common.types.js';

@ObjectType({ description: 'One column of a minimized dataset.', simpleResolvers: true })
export class DatasetColumn {
  @Field(() => String)
  name!: string;

  @Field(() => String, { description: 'STRING or INT: the JSON type of the value in DatasetRow.values.' })
  type!: string;

  @Field(() => Boolean, { description: 'Part of the k-anonymity check: generalized or suppressed when its group is smaller than k.' })
  quasiIdentifier!: boolean;

  @Field(() => String, { description: 'How the value is derived (pseudonym, generalization, aggregate).' })
  derivation!: string;
}

@ObjectType({ description: 'A minimized analytics dataset declared in policies/datasets/.', simpleResolvers: true })
export class DatasetInfo {
  @Field(() => String)
  name!: string;

  @Field(() => String, { nullable: true })
  description!: string | null;

  @Field(() => String)
  purpose!: string;

  @Field(() => Int, { description: 'Every released combination of quasi-identifiers occurs at least k times.' })
  k!: number;

  @Field(() => [DatasetColumn])
  columns!: DatasetColumn[];
}

@ObjectType({ description: 'One released row: a pseudonymous id and generalized values, never an identifier.', simpleResolvers: true })
export class DatasetRow {
  @Field(() => GraphQLJSONObject, { description: 'Column name → value, typed as DatasetInfo.columns says.' })
  values!: Record<string, string | number | null>;
}

@ObjectType({ description: 'A page of a dataset, with what the release plan did to the whole of it.', simpleResolvers: true })
export class DatasetConnection {
  @Field(() => DatasetInfo)
  dataset!: DatasetInfo;

  @Field(() => Int, { description: 'Rows the whole release holds (after suppression).' })
  totalCount!: number;

  @Field(() => Int, { description: 'Rows withheld because their quasi-identifier group stayed smaller than k.' })
  suppressed!: number;

  @Field(() => Int, { description: 'Rows released with generalized quasi-identifiers.' })
  generalized!: number;

  @Field(() => [DatasetRow], { description: 'The rows of this page; a page resumes only at pageInfo.endCursor (rows carry no cursor of their own).' })
  nodes!: DatasetRow[];

  @Field(() => PageInfo)
  pageInfo!: PageInfo;
}
