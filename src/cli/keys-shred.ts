import { parseArgs } from 'node:util';
import { AuditLog } from '../audit/store.js';
import { loadBundle } from '../authz/policy/bundle.js';
import { loadConfig } from '../config.js';
import { shredCustomer, type ShredOutcome } from '../crypto/shred.js';
import { createDb, type Db } from '../db/client.js';
import { describeFailure } from './describe-failure.js';
import { UsageError } from './args.js';

const usage = `usage: npm run keys:shred -- --customer <uuid> --yes
  Destroys one customer's data key (crypto-shredding): phone, email, address,
  id number and birth date become unreadable everywhere, backups included, and
  their masks and lookup indexes are cleared. This cannot be undone.
  --customer ID  the customer's id (uuid)
  --yes          confirms the erasure; refused without it`;

/** What the command was asked to do that cannot be done (unknown customer): exit 1. */
class RefusedError extends Error {}

/** The key is gone but its audit record is not: the operator must know, and record it by hand. */
class AuditNotWrittenError extends Error {}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The fields a shred makes unreadable, by their GraphQL names, for the audit record. */
const SHREDDED_FIELDS = ['address', 'birthDate', 'email', 'idNumber', 'phone'];

function parse(argv: string[]): { customerId: string } {
  let values: { customer?: string; yes?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { customer: { type: 'string' }, yes: { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.customer === undefined) throw new UsageError('--customer is required');
  if (!UUID.test(values.customer)) throw new UsageError(`--customer must be a uuid, got "${values.customer}"`);
  if (!values.yes) throw new UsageError('refusing without --yes: destroying a data key cannot be undone');
  return { customerId: values.customer.toLowerCase() };
}

/** One audit record of the shred, chained like every other (ids and field names only). */
async function recordShred(db: Db, customerId: string, outcome: Exclude<ShredOutcome, 'not_found'>, policyVersion: string): Promise<void> {
  const audit = new AuditLog(db);
  try {
    await audit.append([
      {
        traceId: null,
        spanId: null,
        principalId: 'cli:keys-shred',
        roles: ['operator'],
        action: 'write',
        subject: 'Customer',
        recordIds: [customerId],
        fields: { raw: SHREDDED_FIELDS, masked: [], revealed: [], denied: [] },
        purpose: null,
        decision: 'allow',
        reason: outcome === 'shredded' ? 'crypto-shred: data key destroyed' : 'crypto-shred: no data key left, masks and indexes cleared',
        policyVersion,
      },
    ]);
  } catch (error) {
    throw new AuditNotWrittenError(`customer ${customerId}: data key destroyed, but its audit record was not written`, { cause: error });
  } finally {
    await audit.close();
  }
}

async function main(argv: string[]): Promise<number> {
  const { customerId } = parse(argv);
  const config = loadConfig();
  // Loaded before anything is destroyed: the audit record names the policy version in force.
  const bundle = await loadBundle(config.policyDir);
  const handle = await createDb(config.database);
  try {
    const outcome = await shredCustomer(handle.db, customerId);
    if (outcome === 'not_found') throw new RefusedError(`no customer with id ${customerId}`);
    await recordShred(handle.db, customerId, outcome, bundle.version);
    console.log(
      outcome === 'shredded'
        ? `customer ${customerId}: data key destroyed; masks and lookup indexes cleared; audit record written`
        : `customer ${customerId} had no data key left (already shredded); masks and lookup indexes cleared; audit record written`,
    );
    return 0;
  } finally {
    await handle.close();
  }
}


main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`keys:shred: ${(error instanceof AuditNotWrittenError ? `${error.message}: ` : '') + describeFailure(error instanceof AuditNotWrittenError ? (error.cause ?? error) : error, [UsageError, RefusedError])}`);
    if (error instanceof UsageError) console.error(usage);
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
