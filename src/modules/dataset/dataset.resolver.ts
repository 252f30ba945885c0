import { Arg, Ctx, Int, Query, Resolver } from 'type-graphql';
import { assertSamePlan, datasetFor, describeColumns, readableDatasets } from '../../authz/dataset/access.js';
import { DatasetReader, datasetDecision, type RunQuery } from '../../authz/dataset/reader.js';
import { bind, compile } from '../../authz/statements.js';
import type { DatasetDef } from '../../authz/policy/types.js';
import { requestObserver, type Context } from '../../graphql/context.js';
import { decodeCursor, encodeCursor } from '../../graphql/cursor.js';
import { validatePageSize } from '../common/paging.js';
import { DatasetConnection, DatasetInfo } from './dataset.type.js';

function info(def: DatasetDef): DatasetInfo {
  return { name: def.name, description: def.description ?? null, purpose: def.purpose, k: def.k, columns: describeColumns(def) };
}

/** The analysts' interface: minimized datasets, page by page, each page audited. */
@Resolver()
export class DatasetResolver {
  @Query(() => [DatasetInfo], { description: 'The datasets the caller may read.' })
  datasets(@Ctx() ctx: Context): DatasetInfo[] {
    return readableDatasets(ctx.authz).map(info);
  }

  @Query(() => DatasetConnection, { description: 'A page of a minimized dataset: pseudonymous, generalized, k-anonymous, consent honoured.' })
  async dataset(
    @Ctx() ctx: Context,
    @Arg('name', () => String) name: string,
    @Arg('first', () => Int, { defaultValue: 50 }) first: number,
    @Arg('after', () => String, { nullable: true }) after: string | undefined,
  ): Promise<DatasetConnection> {
    const def = datasetFor(ctx.authz, name);
    validatePageSize(first, ctx.maxPageSize);
    const scope = `dataset|${ctx.principal.id}|${def.name}`;
    const cursor = after ? decodeCursor(ctx.cursorSecret, scope, after) : undefined;
    const reader = new DatasetReader(def, ctx.pseudonymKey);
    return requestObserver(ctx).enforce('Dataset', async (enforce) => {
      const run: RunQuery = (statement) => enforce.query(bind(compile(statement), {}));
      const plan = await reader.plan(run);
      if (cursor) assertSamePlan(plan, cursor.k);
      const page = await reader.page(run, plan, { afterId: cursor?.id ?? null, limit: first });
      enforce.decided([datasetDecision(def, page, 'read', `dataset:${def.name}`)]);
      const endCursor = page.lastId === null ? null : encodeCursor(ctx.cursorSecret, scope, { k: plan.fingerprint, id: page.lastId });
      return {
        dataset: info(def),
        totalCount: plan.released,
        suppressed: plan.suppressed,
        generalized: plan.generalized,
        nodes: page.rows.map((values) => ({ values })),
        pageInfo: { hasNextPage: !page.done, endCursor },
      };
    });
  }
}
