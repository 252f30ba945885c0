import fc from 'fast-check';
import { buildSchema, GraphQLError, parse, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import { withholdValues } from './format-error.js';

const schema = buildSchema(`
  input In { a: Int, b: [Int] }
  type Query { n(x: Int): Int, o(x: In): Int, l(x: [Int]): Int }
`);

/** graphql-js's own messages for a document: its syntax error, or its validation errors. */
function messagesFor(document: string): string[] {
  try {
    return validate(schema, parse(document)).map((e) => e.message);
  } catch (e) {
    if (e instanceof GraphQLError) return [e.message];
    throw e;
  }
}

/**
 * What a caller types: words no message template contains, joined by what
 * ends a value in a message (dots, semicolons, spaces) or nests one
 * (quotes, braces, brackets), decimals included.
 */
const words = fc.array(fc.tuple(fc.stringMatching(/^[QZJKVW]{4,6}$/), fc.constantFrom('.', '. ', ';', '; ', ',', ' ', '"', '\\', '{', '}', '[', ']', ': ', '.5', '"""')), {
  minLength: 1,
  maxLength: 5,
});

/** Documents in which the value is a literal of the wrong type, or breaks the syntax, where graphql-js says `found …`. */
const placements: Array<(literal: string) => string> = [
  (v) => `{ n(x: ${v}) }`,
  (v) => `{ o(x: {a: ${v}}) }`,
  (v) => `{ o(x: {b: [1, ${v}]}) }`,
  (v) => `{ l(x: {k: ${v}}) }`,
  (v) => `{ n(x ${v}) }`,
];

describe('withholdValues', () => {
  it('leaves no word of a literal the caller typed in what graphql-js says about it', () => {
    fc.assert(
      fc.property(words, fc.boolean(), fc.nat(placements.length - 1), (parts, block, at) => {
        const value = parts.map(([w, sep]) => w + sep).join('');
        const literal = block ? `"""${value.replaceAll('"""', '\\"""')}"""` : JSON.stringify(value);
        const messages = messagesFor(placements[at]!(literal));
        expect(messages.length).toBeGreaterThan(0);
        for (const message of messages) {
          const withheld = withholdValues(message);
          for (const [w] of parts) expect(withheld, message).not.toContain(w);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('keeps the rest of the message: where it ends, and the reason after it', () => {
    expect(withholdValues('Expected value of type "Int", found {city: "Shang.hai"}.')).toBe('Expected value of type "Int", found another value.');
    expect(withholdValues('Expected value of type "Int", found 12.5.')).toBe('Expected value of type "Int", found another value.');
    expect(withholdValues('Expected value of type "Email", found "a.b@c.cn"; not an e-mail address')).toBe(
      'Expected value of type "Email", found another value; not an e-mail address',
    );
    expect(withholdValues('Syntax Error: Query Cost limit of 30000 exceeded, found 30010.375.')).toBe(
      'Syntax Error: Query Cost limit of 30000 exceeded, found another value.',
    );
    // The lexer does not escape the token it quotes: a syntax error loses everything after "found".
    expect(withholdValues('Syntax Error: Expected Name, found String "a" b. c".')).toBe('Syntax Error: Expected Name, found another value.');
    // No end in sight: everything after "found" goes.
    expect(withholdValues('Expected value of type "Int", found "unterminated. more')).toBe('Expected value of type "Int", found another value');
  });
});
