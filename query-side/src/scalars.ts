import { GraphQLError, GraphQLScalarType, Kind } from 'graphql';

const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** Parses an ISO 8601 date or date-time into the canonical UTC form the read models store, or null. */
export function parseInstant(value: string): string | null {
  if (!ISO_INSTANT.test(value)) return null;
  // A date-time without an offset would be read in the server's zone: insist on UTC semantics.
  const normalized = value.length > 10 && !/(Z|[+-]\d{2}:?\d{2})$/.test(value) ? `${value}Z` : value;
  const ms = Date.parse(normalized);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
}

function parse(value: unknown): string {
  const instant = typeof value === 'string' ? parseInstant(value) : null;
  if (instant === null)
    throw new GraphQLError('DateTime must be an ISO 8601 date or date-time such as 2026-04-01T09:30:00Z', {
      extensions: { code: 'BAD_USER_INPUT' },
    });
  return instant;
}

/** ISO 8601 instants; inputs are normalised to UTC with milliseconds so they compare as strings. */
export const DateTime = new GraphQLScalarType<string, string>({
  name: 'DateTime',
  description: 'An ISO 8601 instant, answered in UTC: 2026-04-01T09:30:00.000Z',
  serialize: (value) => (value instanceof Date ? value.toISOString() : String(value)),
  parseValue: parse,
  parseLiteral: (ast) => parse(ast.kind === Kind.STRING ? ast.value : undefined),
});
