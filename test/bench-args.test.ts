import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_SOAK_RATE, MAX_ROUNDS, MAX_SOAK_RATE, parseBenchArgs } from '../bench/args.js';

/** `npm run bench -- …`: what the command line accepts, and what it refuses before anything starts. */

const parse = (line: string) => parseBenchArgs(line.split(' ').filter(Boolean));

describe('the bench command line', () => {
  it('takes the documented runs', () => {
    expect(parse('')).toMatchObject({ quick: false, rounds: undefined, only: undefined, soakSec: undefined, rate: DEFAULT_SOAK_RATE, profileVariant: 'full' });
    expect(parse('--quick --scenarios S3,S1 --rounds 3 --compare ../custos-main')).toMatchObject({ quick: true, only: ['S1', 'S3'], rounds: 3, compare: '../custos-main' });
    expect(parse('--quick --scenarios S1,S2,S3 --perf S1,S2,S3').perf).toEqual(['S1', 'S2', 'S3']);
    expect(parse('--quick --scenarios S3 --profile S3 --profile-variant off')).toMatchObject({ cpuProfile: 'S3', profileVariant: 'off' });
    expect(parse('--soak 600 --rate 200')).toMatchObject({ soakSec: 600, rate: 200 });
    expect(parse('--quick --soak 60')).toMatchObject({ quick: true, soakSec: 60, rate: DEFAULT_SOAK_RATE, soakVariant: 'full' });
    expect(parse('--soak 600 --soak-variant off')).toMatchObject({ soakSec: 600, soakVariant: 'off' });
    expect(parse('--soak 600 --soak-variant full').soakVariant).toBe('full');
    expect(parse('--soak 600 --soak-variant floor').soakVariant).toBe('floor');
    expect(parse('--soak 600 --soak-variant off --soak-profile')).toMatchObject({ soakVariant: 'off', soakProfile: true });
    expect(parse('--soak 90 --soak-profile').soakProfile).toBe(true);
    expect(parse('--soak 600').soakProfile).toBe(false);
    expect(parse('--compare . --full-db-param plan_cache_mode=force_generic_plan').fullDbParams).toEqual([['plan_cache_mode', 'force_generic_plan']]);
    expect(parse('--switch-off tracing,audit').switchOff).toEqual(['audit', 'tracing']);
    expect(parse('--scenarios S2,S2').only).toEqual(['S2']);
    expect(parse('--quick --connections 64,16,64').connections).toEqual([16, 64]);
    expect(parse('').connections).toBeUndefined();
    expect(parse('--compare . --full-node-flag max-semi-space-size=64 --full-node-flag heap-growing-percent=100').fullNodeFlags).toEqual([
      '--max-semi-space-size=64',
      '--heap-growing-percent=100',
    ]);
    expect(parse('--compare . --full-node-flag no-opt').fullNodeFlags).toEqual(['--no-opt']);
  });

  it('refuses what is not a whole number in range for --rounds, --soak and --rate', () => {
    expect(() => parse('--rounds 0')).toThrow(`--rounds takes a whole number 1..${MAX_ROUNDS}`);
    expect(() => parse('--rounds abc')).toThrow(/--rounds takes/);
    expect(() => parse('--rounds 1.5')).toThrow(/--rounds takes/);
    expect(() => parse('--rounds 1e1')).toThrow(/--rounds takes/);
    expect(() => parse(`--rounds ${MAX_ROUNDS + 1}`)).toThrow(/--rounds takes/);
    expect(() => parse('--soak 9')).toThrow('--soak takes 10..86400 seconds');
    expect(() => parse('--soak 0x20')).toThrow(/--soak takes/);
    expect(() => parse('--soak 60 --rate 0')).toThrow(`--rate takes 1..${MAX_SOAK_RATE} requests a second`);
    expect(() => parse('--soak 60 --rate=-5')).toThrow(/--rate takes/);
    expect(() => parse('--soak 60 --rate fast')).toThrow(/--rate takes/);
  });

  it('accepts a number exactly when it is written in digits and lies in range (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.integer({ min: -50, max: 50_000 }).map(String), fc.string({ maxLength: 8 }), fc.double().map(String)), (text) => {
        const asRounds = () => parseBenchArgs([`--rounds=${text}`]);
        const asRate = () => parseBenchArgs(['--soak', '60', `--rate=${text}`]);
        const digits = /^\d+$/.test(text);
        const n = Number(text);
        if (digits && n >= 1 && n <= MAX_ROUNDS) expect(asRounds().rounds).toBe(n);
        else expect(asRounds).toThrow(/--rounds takes/);
        if (digits && n >= 1 && n <= MAX_SOAK_RATE) expect(asRate().rate).toBe(n);
        else expect(asRate).toThrow(/--rate takes|--soak takes/);
      }),
    );
  });

  it('refuses unknown options, stray arguments and unknown scenarios, naming them', () => {
    expect(() => parse('--connection 4')).toThrow(/--connection/);
    expect(() => parse('quick')).toThrow(/quick/);
    expect(() => parse('--scenarios S1,S9')).toThrow('--scenarios takes S1,S2,S3,S4,S5 separated by commas (not S9)');
    expect(() => parse('--scenarios ,')).toThrow(/--scenarios takes/);
    expect(() => parse('--perf S7')).toThrow(/--perf takes .* \(not S7\)/);
    expect(() => parse('--profile S6')).toThrow(/--profile takes one of/);
    expect(() => parse('--profile S1 --profile-variant floor')).toThrow('--profile-variant takes full or off');
    expect(() => parse('--full-db-param work_mem')).toThrow(/--full-db-param takes NAME=VALUE/);
    expect(() => parse('--switch-off masking')).toThrow(/not masking/);
    for (const bad of ['0', '257', '16,', 'sixteen', '16;64']) expect(() => parse(`--connections ${bad}`), bad).toThrow('--connections takes counts 1..256 separated by commas');
    // Dashes, spaces or a second option smuggled into one flag are refused: each flag is one NAME[=VALUE].
    for (const bad of ['--no-opt', 'max-semi-space-size=', 'a=b c', 'import=x y', '=64', 'MAX=1']) {
      expect(() => parseBenchArgs([`--full-node-flag=${bad}`]), bad).toThrow(/--full-node-flag takes NAME or NAME=VALUE/);
    }
  });

  it('refuses an option that the run it is given with would ignore', () => {
    expect(() => parse('--rate 200')).toThrow('only with --soak');
    expect(() => parse('--profile-variant off')).toThrow('only with --profile');
    expect(() => parse('--soak-variant off')).toThrow('only with --soak');
    expect(() => parse('--soak 60 --soak-variant bare')).toThrow('--soak-variant takes full, off, floor');
    expect(() => parse('--soak-profile')).toThrow('only with --soak');
    expect(() => parse('--quick --soak-profile')).toThrow('only with --soak');
    // Three early windows and the last three need nine 10 s windows.
    expect(() => parse('--soak 89 --soak-profile')).toThrow('a soak of 90 s at least');
    expect(() => parse('--scenarios S3 --profile S1')).toThrow('--profile names a scenario that --scenarios leaves out');
    expect(() => parse('--scenarios S1 --perf S1,S2')).toThrow('--perf names a scenario that --scenarios leaves out');
    expect(() => parse('--perf S1 --profile S1')).toThrow(/not with --profile/);
    expect(() => parse('--switch-off audit --compare ../x')).toThrow(/not with --compare/);
    for (const extra of ['--rounds 2', '--scenarios S1', '--connections 64', '--profile S1', '--perf S1', '--compare ../x', '--switch-off audit']) {
      expect(() => parse(`--soak 60 ${extra}`), extra).toThrow(`not with ${extra.split(' ')[0]}`);
    }
    // Full's own settings go with a soak of full, and with no other.
    expect(parse('--soak 60 --full-node-flag heap-growing-percent=0 --full-db-param work_mem=8MB')).toMatchObject({
      soakVariant: 'full', fullNodeFlags: ['--heap-growing-percent=0'], fullDbParams: [['work_mem', '8MB']],
    });
    for (const variant of ['off', 'floor']) {
      for (const extra of ['--full-db-param a=b', '--full-node-flag no-opt']) {
        expect(() => parse(`--soak 60 --soak-variant ${variant} ${extra}`), extra).toThrow(`not with ${extra.split(' ')[0]} (they set full's, and this soak loads ${variant})`);
      }
    }
  });
});
