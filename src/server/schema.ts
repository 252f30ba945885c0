import 'reflect-metadata';
import { printSchema, type GraphQLSchema } from 'graphql';
import { buildSchema } from 'type-graphql';
import { CustomerMutations } from '../modules/customer/customer.mutations.js';
import { CustomerResolver } from '../modules/customer/customer.resolver.js';
import { MeResolver } from '../modules/principal/me.resolver.js';
import { AuditResolver } from '../modules/audit/audit.resolver.js';
import { DatasetResolver } from '../modules/dataset/dataset.resolver.js';
import { ExportResolver } from '../modules/export/export.resolver.js';

/** Builds the executable schema (no global middleware: it would run per field). */
export async function createSchema(): Promise<GraphQLSchema> {
  return buildSchema({
    resolvers: [MeResolver, CustomerResolver, CustomerMutations, AuditResolver, DatasetResolver, ExportResolver],
    validate: false,
    emitSchemaFile: false,
  });
}

export function schemaSdl(schema: GraphQLSchema): string {
  return `${printSchema(schema)}\n`;
}
