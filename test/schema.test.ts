import 'reflect-metadata';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { createSchema, schemaSdl } from '../src/server/schema.js';

describe('schema.graphql', () => {
  it('matches the schema the server builds (run `npm run schema:emit` after changing types)', async () => {
    const committed = await readFile(new URL('../schema.graphql', import.meta.url), 'utf8');
    expect(schemaSdl(await createSchema())).toBe(committed);
  });
});
