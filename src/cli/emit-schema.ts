import { writeFile } from 'node:fs/promises';
import { createSchema, schemaSdl } from '../server/schema.js';

/** `npm run schema:emit`: writes schema.graphql, the committed contract (a test fails when it drifts). */
const sdl = schemaSdl(await createSchema());
await writeFile(new URL('../../schema.graphql', import.meta.url), sdl);
console.log('wrote schema.graphql');
