import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ customers: 10 });
});
afterAll(async () => {
  await server?.stop();
});

/** Values a caller might put in a variable: phone numbers, e-mails, id numbers, names. */
const personal = fc.oneof(
  fc.stringMatching(/^1[3-9]\d{9}$/),
  fc.tuple(fc.stringMatching(/^[a-z]{3,8}$/), fc.constantFrom('163.com', 'qq.com', 'example.cn')).map(([u, d]) => `${u}@${d}`),
  fc.tuple(fc.stringMatching(/^[a-z]{3,8}$/), fc.stringMatching(/^[a-z]{3,8}$/), fc.constantFrom('163.com', 'qq.com')).map(([u, v, d]) => `${u}.${v}@${d}`),
  fc.stringMatching(/^\d{17}[\dX]$/),
  fc.constantFrom('张伟', '王芳', '李娜', '刘洋'),
);

/** Operations whose variables are coerced by graphql-js before any resolver runs. */
const misuses: Array<(v: string) => { query: string; variables: Record<string, unknown> }> = [
  (v) => ({ query: 'query ($n: Int!) { customers(first: $n) { totalCount } }', variables: { n: v } }),
  (v) => ({ query: 'query ($id: ID!) { customer(id: $id) { id } }', variables: { id: { value: v } } }),
  (v) => ({ query: 'query ($f: CustomerFilter) { customers(first: 1, filter: $f) { totalCount } }', variables: { f: { mobile: v } } }),
  (v) => ({ query: 'query ($f: CustomerFilter) { customers(first: 1, filter: $f) { totalCount } }', variables: { f: { phone: [v] } } }),
  (v) => ({ query: 'query ($p: Purpose) { customers(first: 1) { edges { node { phone(purpose: $p) } } } }', variables: { p: v } }),
  (v) => ({ query: `{ customers(first: ${JSON.stringify(v)}) { totalCount } }`, variables: {} }),
  (v) => ({ query: `{ customers(first: 1, filter: { city: 1, name: ${JSON.stringify(v)}, tier: [${JSON.stringify(v)}] }) { totalCount } }`, variables: {} }),
  (v) => ({ query: `{ customers(first: 1, filter: ${JSON.stringify(v)}) { totalCount } }`, variables: {} }),
];

describe('error messages', () => {
  it('never echo a value the caller passed in a wrongly typed argument or variable', async () => {
    await fc.assert(
      fc.asyncProperty(personal, fc.integer({ min: 0, max: misuses.length - 1 }), async (value, i) => {
        const { query, variables } = misuses[i]!(value);
        const res = await gql(server, 'u-mgr-1', query, variables);
        expect(res.json.errors?.length ?? 0, res.text).toBeGreaterThan(0);
        expect(res.text).not.toContain(value);
        // Nor what follows a dot in it: a message cut at the value's first dot would show the rest.
        const dot = value.indexOf('.');
        if (dot > 0 && value.includes('@', dot)) expect(res.text).not.toContain(value.slice(dot + 1));
      }),
      { numRuns: 60 },
    );
  });
});
