import type { GraphQLResolveInfo } from 'graphql';
import type { AccessDecision } from '../../authz/decision.js';
import { Arg, Ctx, ID, Info, Mutation, Resolver } from 'type-graphql';
import { planProjection } from '../../authz/projection.js';
import { readRows } from '../../authz/reader.js';
import { addInteraction, updateCustomerContact, type ContactUpdate } from '../../authz/writer.js';
import { interactions } from '../../db/schema/index.js';
import { BadUserInputError } from '../../errors.js';
import { readContext, type Context } from '../../graphql/context.js';
import { toNode } from '../../graphql/render.js';
import { requestedOf } from '../../graphql/requested.js';
import { sql } from 'drizzle-orm';
import { Interaction, InteractionChannel } from '../interaction/interaction.type.js';
import { assertUuid, getCustomer } from './customer.repository.js';
import { Customer, UpdateCustomerInput } from './customer.type.js';
import { isValidAddress, isValidEmail, isValidPhone } from './contact-validation.js';

/** A write for the audit trail: which record, which fields (names only). */
function writeDecision(subject: 'Customer' | 'Interaction', id: string, fields: string[], reason: string): AccessDecision {
  return {
    subject,
    action: 'write',
    recordIds: [id],
    fields: { raw: fields, masked: [], revealed: [], denied: [] },
    purpose: null,
    decision: 'allow',
    reason,
  };
}

function validateUpdate(input: UpdateCustomerInput): ContactUpdate {
  const update: ContactUpdate = {};
  if (input.phone != null) {
    if (!isValidPhone(input.phone)) throw new BadUserInputError('input.phone is not a valid mobile number', { argument: 'input.phone' });
    update.phone = input.phone.trim();
  }
  if (input.email != null) {
    if (!isValidEmail(input.email)) throw new BadUserInputError('input.email is not a valid email address', { argument: 'input.email' });
    update.email = input.email.trim();
  }
  if (input.address != null) {
    if (!isValidAddress(input.address)) throw new BadUserInputError('input.address must be 4–200 characters', { argument: 'input.address' });
    update.address = input.address.trim();
  }
  if (Object.keys(update).length === 0) throw new BadUserInputError('input names no field to update', { argument: 'input' });
  return update;
}

@Resolver()
export class CustomerMutations {
  @Mutation(() => Customer, { nullable: true, description: 'Rectify contact fields; null when the customer is not yours to see.' })
  async updateCustomer(
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
    @Arg('id', () => ID) id: string,
    @Arg('input', () => UpdateCustomerInput) input: UpdateCustomerInput,
  ) {
    assertUuid(id);
    const update = validateUpdate(input);
    const done = await updateCustomerContact(ctx, id, update);
    if (!done) return null;
    ctx.decisions.push(writeDecision('Customer', id, Object.keys(update), 'rectify contact fields'));
    const row = await getCustomer(ctx, id, requestedOf(info, 'Customer'));
    return row ? toNode('Customer', row) : null;
  }

  @Mutation(() => Interaction, { nullable: true, description: 'Record a contact; null when the customer is not yours to see.' })
  async addInteraction(
    @Ctx() ctx: Context,
    @Info() info: GraphQLResolveInfo,
    @Arg('customerId', () => ID) customerId: string,
    @Arg('channel', () => InteractionChannel) channel: InteractionChannel,
    @Arg('summary', () => String) summary: string,
  ) {
    assertUuid(customerId, 'customerId');
    const text = summary.trim();
    if (text.length < 1 || text.length > 2000) throw new BadUserInputError('summary must be 1–2000 characters', { argument: 'summary' });
    const id = await addInteraction(ctx, { customerId, channel, summary: text });
    if (!id) return null;
    ctx.decisions.push(writeDecision('Interaction', id, ['channel', 'summary'], `customer ${customerId}`));
    const projection = planProjection(ctx.authz, 'Interaction', requestedOf(info, 'Interaction'));
    const [row] = await readRows(readContext(ctx), { projection, where: [sql`${interactions.id} = ${id}::uuid`], orderBy: [], limit: 1 });
    return row ? toNode('Interaction', row) : null;
  }
}
