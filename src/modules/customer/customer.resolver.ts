import type { GraphQLResolveInfo } from 'graphql';
import { Arg, Ctx, FieldResolver, ID, Info, Int, Query, Resolver, Root } from 'type-graphql';
import { interactions, orders } from '../../db/schema/index.js';
import type { Context } from '../../graphql/context.js';
import type { Requested } from '../../authz/projection.js';
import type { RenderedRow } from '../../authz/reader.js';
import { cellOf, Edge, toNode } from '../../graphql/render.js';
import { connectionSelection, requestedInConnection, requestedOf } from '../../graphql/requested.js';
import { childLoader, type ChildSpec } from '../common/child-connection.js';
import { Purpose } from '../common/common.types.js';
import { InteractionConnection } from '../interaction/interaction.type.js';
import { OrderConnection } from '../order/order.type.js';
import { getCustomer, listCustomers } from './customer.repository.js';
import { Customer, CustomerConnection, CustomerFilter, CustomerOrder } from './customer.type.js';

type Node = Customer & { __row: Customer['__row'] };

const orderChildren: ChildSpec = { subject: 'Order', parentColumn: orders.customerId, sortColumn: orders.placedAt, idColumn: orders.id };
const interactionChildren: ChildSpec = {
  subject: 'Interaction',
  parentColumn: interactions.customerId,
  sortColumn: interactions.occurredAt,
  idColumn: interactions.id,
};

function purposeArg(description: string) {
  return Arg('purpose', () => Purpose, { nullable: true, description });
}

/** Thin: every read goes through the repository, which asks the enforcement layer. */
@Resolver(() => Customer)
export class CustomerResolver {
  @Query(() => CustomerConnection, { description: 'Customers the caller may see: the row policy is applied in SQL, so paging and totalCount are right.' })
  async customers(
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
    @Arg('first', () => Int, { defaultValue: 20 }) first: number,
    @Arg('after', () => String, { nullable: true }) after: string | undefined,
    @Arg('filter', () => CustomerFilter, { nullable: true }) filter: CustomerFilter | undefined,
    @Arg('orderBy', () => CustomerOrder, { nullable: true }) orderBy: CustomerOrder | undefined,
  ) {
    const requested = requestedInConnection(info, 'CustomerConnection', 'Customer');
    const page = await listCustomers(ctx, { first, after, filter, orderBy }, requested);
    return connection('Customer', page);
  }

  @Query(() => Customer, { nullable: true, description: 'One customer; null when it does not exist or is not the caller’s to see.' })
  async customer(@Ctx() ctx: Context, @Info() info: GraphQLResolveInfo, @Arg('id', () => ID) id: string) {
    const row = await getCustomer(ctx, id, requestedOf(info, 'Customer'));
    return row ? toNode('Customer', row) : null;
  }

  @FieldResolver(() => String, { nullable: true, description: 'Surname and stars unless revealed.' })
  name(@Root() c: Node, @purposeArg('Purpose of a reveal.') purpose?: Purpose) {
    return cellOf('Customer', c, 'name', purpose);
  }

  @FieldResolver(() => String, { nullable: true, description: 'Last four digits unless revealed with a permitted purpose.' })
  phone(@Root() c: Node, @purposeArg('Purpose of a reveal.') purpose?: Purpose) {
    return cellOf('Customer', c, 'phone', purpose);
  }

  @FieldResolver(() => String, { nullable: true, description: 'First letter and domain unless revealed.' })
  email(@Root() c: Node, @purposeArg('Purpose of a reveal.') purpose?: Purpose) {
    return cellOf('Customer', c, 'email', purpose);
  }

  @FieldResolver(() => String, { nullable: true, description: 'Province and city unless revealed.' })
  address(@Root() c: Node, @purposeArg('Purpose of a reveal.') purpose?: Purpose) {
    return cellOf('Customer', c, 'address', purpose);
  }

  @FieldResolver(() => String, { nullable: true, description: 'Resident id number: redacted unless revealed (dpo).' })
  idNumber(@Root() c: Node, @purposeArg('Purpose of a reveal.') purpose?: Purpose) {
    return cellOf('Customer', c, 'idNumber', purpose);
  }

  @FieldResolver(() => String, { nullable: true, description: 'Age band unless revealed.' })
  birthDate(@Root() c: Node, @purposeArg('Purpose of a reveal.') purpose?: Purpose) {
    return cellOf('Customer', c, 'birthDate', purpose);
  }

  @FieldResolver(() => OrderConnection, { description: 'Latest orders first.' })
  async orders(
    @Root() c: Node,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
    @Arg('first', () => Int, { defaultValue: 10 }) first: number,
    @Arg('after', () => String, { nullable: true }) after: string | undefined,
  ) {
    return childConnection(ctx, info, orderChildren, 'Order', { first, after }, c.id);
  }

  @FieldResolver(() => InteractionConnection, { description: 'Latest interactions first.' })
  async interactions(
    @Root() c: Node,
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
    @Arg('first', () => Int, { defaultValue: 10 }) first: number,
    @Arg('after', () => String, { nullable: true }) after: string | undefined,
  ) {
    return childConnection(ctx, info, interactionChildren, 'Interaction', { first, after }, c.id);
  }
}

/**
 * The selection under a child connection, worked out once per field occurrence: graphql-js hands
 * every parent row of a list the same fieldNodes array (and the request's variables), so the
 * answer is the same for all of them.
 */
const childSelections = new WeakMap<GraphQLResolveInfo['fieldNodes'], { variables: unknown; requested: Requested; total: boolean; signature: string }>();

async function childConnection(
  ctx: Context,
  info: GraphQLResolveInfo,
  spec: ChildSpec,
  type: string,
  args: { first: number; after: string | undefined },
  parentId: string,
) {
  let selection = childSelections.get(info.fieldNodes);
  // The variables decide @skip/@include and arguments: same nodes with other variables is another selection.
  if (!selection || selection.variables !== info.variableValues) {
    const { requested, totalCount: total } = connectionSelection(info, `${type}Connection`, type);
    const signature = `${info.path.key}|${JSON.stringify(args)}|${JSON.stringify([...requested].map(([k, v]) => [k, [...v]]))}|${total}`;
    selection = { variables: info.variableValues, requested, total, signature };
    childSelections.set(info.fieldNodes, selection);
  }
  const { requested, total, signature } = selection;
  const page = await childLoader(ctx, spec, { first: args.first, after: args.after, requested, total, signature }).load(parentId);
  return connection(type, page);
}

/** A Relay connection over policed rows; cursors and totalCount are computed only when selected. */
function connection<T>(type: string, page: { rows: RenderedRow[]; cursorOf: (row: RenderedRow) => string; hasNextPage: boolean; totalCount: T }) {
  const edges = page.rows.map((row) => new Edge(toNode(type, row), row, page.cursorOf));
  const last = edges.at(-1);
  return {
    edges,
    pageInfo: { hasNextPage: page.hasNextPage, endCursor: last ? () => last.cursor() : null },
    totalCount: page.totalCount,
  };
}

