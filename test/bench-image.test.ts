import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { imageNodeFlags, imageNodeOptions } from '../bench/image.js';

/** The bench runs its servers as the image runs custos (bench/image.ts): the Dockerfile's NODE_OPTIONS and CMD flags. */

const runtime = (env: string, cmd: string) => `FROM node:22-slim\nENV NODE_ENV=production \\\n    ${env} \\\n    PORT=4000\n${cmd}\n`;

describe('how the image runs custos', () => {
  it('reads the project Dockerfile', () => {
    const dockerfile = readFileSync('Dockerfile', 'utf8');
    expect(imageNodeOptions(dockerfile)).toBe('--max-semi-space-size=32');
    expect(imageNodeFlags(dockerfile)).toEqual(['--heap-growing-percent=100']);
  });

  it('reads NODE_OPTIONS quoted or not, and the last CMD', () => {
    expect(imageNodeOptions(runtime('NODE_OPTIONS="--a=1 --b"', 'CMD ["node", "dist/main.js"]'))).toBe('--a=1 --b');
    expect(imageNodeFlags(runtime('NODE_OPTIONS=--a', 'CMD ["node", "dist/main.js"]'))).toEqual([]);
    expect(imageNodeFlags(`CMD ["node", "--x", "dist/main.js"]\n${runtime('NODE_OPTIONS=--a', 'CMD ["node", "--y=2", "--z", "dist/main.js"]')}`)).toEqual(['--y=2', '--z']);
  });

  it('refuses a Dockerfile it cannot run custos from as the image would, saying why', () => {
    expect(() => imageNodeOptions(runtime('PORT=1', 'CMD ["node", "dist/main.js"]'))).toThrow(/sets no NODE_OPTIONS/);
    expect(() => imageNodeFlags(runtime('NODE_OPTIONS=--a', ''))).toThrow(/has no CMD/);
    expect(() => imageNodeFlags(runtime('NODE_OPTIONS=--a', 'CMD node dist/main.js'))).toThrow(/not in exec form/);
    expect(() => imageNodeFlags(runtime('NODE_OPTIONS=--a', 'CMD ["node", "dist/other.js"]'))).toThrow(/must be \["node"/);
    expect(() => imageNodeFlags(runtime('NODE_OPTIONS=--a', 'CMD ["tini", "node", "dist/main.js"]'))).toThrow(/must be \["node"/);
    expect(() => imageNodeFlags(runtime('NODE_OPTIONS=--a', 'CMD ["node", "-r", "x", "dist/main.js"]'))).toThrow(/gives node -r, not a --flag/);
  });
});
