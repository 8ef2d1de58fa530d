/**
 * The circuit breaker's trip expression, parsed by a strict grammar of Traefik's functions and
 * written out again from the parse, so nothing but these tokens reaches Traefik:
 *
 *   expression := and ( "||" and )*
 *   and        := term ( "&&" term )*
 *   term       := "(" expression ")" | metric comparator number
 *   metric     := "NetworkErrorRatio()"
 *               | "ResponseCodeRatio(" code "," code "," code "," code ")"   0-600, from < to, twice
 *               | "LatencyAtQuantileMS(" quantile ")"                        a float, 0 < q < 100
 *   comparator := ">" | ">=" | "<" | "<=" | "==" | "!="
 *
 * Numbers are plain decimals (no sign, exponent or hex). The quantile is written with a decimal
 * point, as Traefik's float argument needs. Bounded: 256 characters, 16 terms, 8 levels.
 */

const MAX_LENGTH = 256;
const MAX_TERMS = 16;
const MAX_DEPTH = 8;
const TOKEN =
  /\s*(NetworkErrorRatio|ResponseCodeRatio|LatencyAtQuantileMS|\|\||&&|>=|<=|==|!=|[()<>,]|\d{1,9}(?:\.\d{1,6})?)/y;

export type BreakerExpression = { readonly expression: string } | { readonly reason: string };

class ParseError extends Error {}

export function parseBreakerExpression(source: unknown): BreakerExpression {
  if (typeof source !== 'string') return { reason: 'must be a string' };
  if (source.length === 0 || source.length > MAX_LENGTH) return { reason: `must be 1-${MAX_LENGTH} characters` };
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < source.length) {
    if (/^\s*$/.test(source.slice(TOKEN.lastIndex))) break;
    const at = TOKEN.lastIndex;
    const match = TOKEN.exec(source);
    if (!match) return { reason: `unexpected ${JSON.stringify(source.slice(at, at + 12).trim())} at ${at}` };
    tokens.push(match[1]!);
  }
  let position = 0;
  let terms = 0;
  const peek = () => tokens[position];
  const take = (expected?: string): string => {
    const token = tokens[position];
    if (token === undefined) throw new ParseError(`ends early${expected ? `: expected ${expected}` : ''}`);
    if (expected !== undefined && token !== expected) throw new ParseError(`expected ${expected}, found ${token}`);
    position += 1;
    return token;
  };
  const code = (): number => {
    const token = take();
    if (!/^\d{1,3}$/.test(token) || Number(token) > 600)
      throw new ParseError(`a status code bound must be 0-600, found ${token}`);
    return Number(token);
  };
  const number = (): string => {
    const token = take();
    if (!/^\d/.test(token)) throw new ParseError(`expected a number, found ${token}`);
    return token;
  };
  const metric = (): string => {
    const name = take();
    if (name === 'NetworkErrorRatio') {
      take('(');
      take(')');
      return 'NetworkErrorRatio()';
    }
    if (name === 'ResponseCodeRatio') {
      take('(');
      const codes = [code(), (take(','), code()), (take(','), code()), (take(','), code())];
      take(')');
      if (codes[0]! >= codes[1]! || codes[2]! >= codes[3]!)
        throw new ParseError('ResponseCodeRatio needs from < to for both ranges');
      return `ResponseCodeRatio(${codes.join(', ')})`;
    }
    if (name === 'LatencyAtQuantileMS') {
      take('(');
      const quantile = number();
      take(')');
      if (!quantile.includes('.') || Number(quantile) <= 0 || Number(quantile) >= 100)
        throw new ParseError('LatencyAtQuantileMS takes a quantile such as 50.0 (above 0, below 100)');
      return `LatencyAtQuantileMS(${quantile})`;
    }
    throw new ParseError(`expected NetworkErrorRatio, ResponseCodeRatio or LatencyAtQuantileMS, found ${name}`);
  };
  const term = (depth: number): string => {
    if (peek() === '(') {
      if (depth >= MAX_DEPTH) throw new ParseError(`nested deeper than ${MAX_DEPTH} levels`);
      take('(');
      const inner = expression(depth + 1);
      take(')');
      return `(${inner})`;
    }
    if ((terms += 1) > MAX_TERMS) throw new ParseError(`more than ${MAX_TERMS} comparisons`);
    const left = metric();
    const comparator = take();
    if (!['>', '>=', '<', '<=', '==', '!='].includes(comparator))
      throw new ParseError(`expected a comparison, found ${comparator}`);
    return `${left} ${comparator} ${number()}`;
  };
  const conjunction = (depth: number): string => {
    let out = term(depth);
    while (peek() === '&&') out += ` ${take()} ${term(depth)}`;
    return out;
  };
  const expression = (depth: number): string => {
    let out = conjunction(depth);
    while (peek() === '||') out += ` ${take()} ${conjunction(depth)}`;
    return out;
  };
  try {
    const expressionText = expression(0);
    if (position < tokens.length) throw new ParseError(`unexpected ${tokens[position]} after the expression`);
    return { expression: expressionText };
  } catch (error) {
    if (error instanceof ParseError) return { reason: error.message };
    throw error;
  }
}
