import { createRequire } from 'node:module';
import type {
  ASTVisitor,
  DocumentNode,
  FieldNode,
  FragmentDefinitionNode,
  GraphQLError as GraphQLErrorType,
  GraphQLNamedType,
  GraphQLSchema,
  SelectionSetNode,
  ValidationContext,
  ValidationRule,
} from 'graphql';

// The CommonJS build of graphql, the one mercurius uses: graphql-js refuses schema objects from
// "another realm", and a bundler (vitest) would otherwise hand this file the .mjs build.
const graphql = createRequire(import.meta.url)('graphql') as typeof import('graphql');
const {
  GraphQLError,
  Kind,
  getNamedType,
  getNullableType,
  isListType,
  isObjectType,
  isInterfaceType,
  specifiedRules,
  validate,
} = graphql;

/**
 * Limits on what one GraphQL document may ask for, enforced as graphql-js validation rules
 * (before anything executes; HTTP through mercurius `validationRules`, subscriptions through a
 * `preSubscriptionExecution` hook). Every refusal carries `extensions.code`:
 *
 * | code | when |
 * |---|---|
 * | `GRAPHQL_DEPTH_LIMIT` | fields nest deeper than `maxDepth` (introspection: `maxIntrospectionDepth`) |
 * | `GRAPHQL_COST_LIMIT` | the estimated number of resolved fields exceeds `maxCost` |
 * | `GRAPHQL_ALIAS_LIMIT` | more than `maxAliases` aliases |
 * | `GRAPHQL_FIELD_LIMIT` | more than `maxFields` field selections in the document |
 * | `GRAPHQL_OPERATION_LIMIT` | more than `maxOperations` operations or fragments in one document |
 * | `GRAPHQL_INTROSPECTION_DISABLED` | `__schema` / `__type` while introspection is off |
 * | `GRAPHQL_BATCH_LIMIT` | a JSON array of operations (batching is off) |
 * | `GRAPHQL_SUBSCRIPTION_NEEDS_WEBSOCKET` | a subscription sent as an HTTP request |
 */
export interface GraphQLLimits {
  maxDepth: number;
  /** GraphiQL's own introspection query nests 15 deep (ofType chains). */
  maxIntrospectionDepth: number;
  maxCost: number;
  maxAliases: number;
  maxFields: number;
  maxOperations: number;
  /** Parser token limit: a huge document is refused before it is even built. */
  maxTokens: number;
  introspection: boolean;
}

export const DEFAULT_GRAPHQL_LIMITS: GraphQLLimits = {
  maxDepth: 10,
  maxIntrospectionDepth: 15,
  // GraphiQL's introspection query is estimated at ~33k; the widest ordinary page at ~5k.
  maxCost: 50_000,
  maxAliases: 30,
  maxFields: 500,
  maxOperations: 20,
  maxTokens: 5_000,
  introspection: false,
};

export const GQL_DEPTH_LIMIT = 'GRAPHQL_DEPTH_LIMIT';
export const GQL_COST_LIMIT = 'GRAPHQL_COST_LIMIT';
export const GQL_ALIAS_LIMIT = 'GRAPHQL_ALIAS_LIMIT';
export const GQL_FIELD_LIMIT = 'GRAPHQL_FIELD_LIMIT';
export const GQL_OPERATION_LIMIT = 'GRAPHQL_OPERATION_LIMIT';
export const GQL_INTROSPECTION_DISABLED = 'GRAPHQL_INTROSPECTION_DISABLED';
export const GQL_BATCH_LIMIT = 'GRAPHQL_BATCH_LIMIT';
export const GQL_SUBSCRIPTION_NEEDS_WEBSOCKET = 'GRAPHQL_SUBSCRIPTION_NEEDS_WEBSOCKET';

/** The page size a `first: $variable` is costed at: validation is cached per document, not per variables. */
const MAX_PAGE = 100;
/** How many items a plain list field is assumed to hold. */
const LIST_FACTOR = 10;

const refuse = (code: string, message: string, extra: Record<string, unknown> = {}) =>
  new GraphQLError(message, { extensions: { code, ...extra } });

function fragmentsOf(document: DocumentNode): Map<string, FragmentDefinitionNode> {
  const map = new Map<string, FragmentDefinitionNode>();
  for (const d of document.definitions) if (d.kind === Kind.FRAGMENT_DEFINITION) map.set(d.name.value, d);
  return map;
}

/** Deepest field nesting under `set`; fragment spreads are followed once per path (cycles are another rule's error). */
function depthOf(
  set: SelectionSetNode | undefined,
  fragments: Map<string, FragmentDefinitionNode>,
  seen: Set<string>,
  stop: number,
): number {
  if (!set) return 0;
  let max = 0;
  for (const s of set.selections) {
    let d = 0;
    if (s.kind === Kind.FIELD) d = s.selectionSet ? 1 + depthOf(s.selectionSet, fragments, seen, stop - 1) : 1;
    else if (s.kind === Kind.INLINE_FRAGMENT) d = depthOf(s.selectionSet, fragments, seen, stop);
    else {
      const name = s.name.value;
      const f = fragments.get(name);
      if (!f || seen.has(name)) continue;
      seen.add(name);
      d = depthOf(f.selectionSet, fragments, seen, stop);
      seen.delete(name);
    }
    max = Math.max(max, d);
    if (max > stop) return max; // deep enough to refuse; stop walking
  }
  return max;
}

/** Depth limit, per root field: introspection roots get their own (larger) allowance. */
export function depthLimitRule(limits: Pick<GraphQLLimits, 'maxDepth' | 'maxIntrospectionDepth'>): ValidationRule {
  return (context: ValidationContext): ASTVisitor => {
    const fragments = fragmentsOf(context.getDocument());
    return {
      OperationDefinition(node) {
        for (const root of node.selectionSet.selections) {
          const wrapped: SelectionSetNode = { kind: Kind.SELECTION_SET, selections: [root] };
          const introspection = root.kind === Kind.FIELD && root.name.value.startsWith('__');
          const limit = introspection ? limits.maxIntrospectionDepth : limits.maxDepth;
          const depth = depthOf(wrapped, fragments, new Set(), limit);
          if (depth > limit) {
            context.reportError(refuse(GQL_DEPTH_LIMIT, `the query nests deeper than ${limit} levels`, { limit }));
            return;
          }
        }
      },
    };
  };
}

function intArgument(field: FieldNode, name: string): number | 'variable' | undefined {
  const arg = field.arguments?.find((a) => a.name.value === name);
  if (!arg) return undefined;
  if (arg.value.kind === Kind.INT) return Number(arg.value.value);
  if (arg.value.kind === Kind.VARIABLE) return 'variable';
  return undefined;
}

/**
 * Estimated cost: every field resolved counts 1, times how many parents it is resolved for. A
 * `first` argument multiplies by the page asked for (a variable counts as the largest page), a
 * connection's own lists then count once, and any other list counts {@link LIST_FACTOR} items.
 */
export function costLimitRule(limits: Pick<GraphQLLimits, 'maxCost'>): ValidationRule {
  return (context: ValidationContext): ASTVisitor => {
    const schema = context.getSchema();
    const fragments = fragmentsOf(context.getDocument());

    const costOf = (
      set: SelectionSetNode | undefined,
      parent: GraphQLNamedType | undefined,
      seen: Set<string>,
      budget: number,
    ): number => {
      if (!set) return 0;
      let total = 0;
      for (const s of set.selections) {
        if (s.kind === Kind.FIELD) {
          total += 1;
          if (!s.selectionSet) continue;
          const def =
            parent && (isObjectType(parent) || isInterfaceType(parent)) ? parent.getFields()[s.name.value] : undefined;
          const introspected =
            s.name.value === '__schema'
              ? schema.getType('__Schema')
              : s.name.value === '__type'
                ? schema.getType('__Type')
                : undefined;
          const type = def?.type ?? (introspected ? introspected : undefined);
          const named = type ? getNamedType(type) : undefined;
          let factor = 1;
          const first = intArgument(s, 'first');
          const firstDefault = def?.args.find((a) => a.name === 'first')?.defaultValue;
          if (first === 'variable') factor = MAX_PAGE;
          else if (typeof first === 'number') factor = Math.max(1, Math.min(first, MAX_PAGE * 10));
          else if (typeof firstDefault === 'number') factor = firstDefault;
          else if (type && isListType(getNullableType(type)) && !(parent && parent.name.endsWith('Connection')))
            factor = LIST_FACTOR;
          total += factor * costOf(s.selectionSet, named, seen, budget / factor);
        } else if (s.kind === Kind.INLINE_FRAGMENT) {
          const on = s.typeCondition ? schema.getType(s.typeCondition.name.value) : parent;
          total += costOf(s.selectionSet, on ?? parent, seen, budget - total);
        } else {
          const name = s.name.value;
          const f = fragments.get(name);
          if (!f || seen.has(name)) continue;
          seen.add(name);
          total += costOf(f.selectionSet, schema.getType(f.typeCondition.name.value) ?? parent, seen, budget - total);
          seen.delete(name);
        }
        if (total > budget) return total; // already over: no need to walk the rest
      }
      return total;
    };

    return {
      OperationDefinition(node) {
        const root =
          node.operation === 'query'
            ? schema.getQueryType()
            : node.operation === 'mutation'
              ? schema.getMutationType()
              : schema.getSubscriptionType();
        const cost = costOf(node.selectionSet, root ?? undefined, new Set(), limits.maxCost);
        if (cost > limits.maxCost)
          context.reportError(
            refuse(GQL_COST_LIMIT, `the query would cost more than ${limits.maxCost} (estimated ${Math.ceil(cost)})`, {
              limit: limits.maxCost,
            }),
          );
      },
    };
  };
}

/**
 * Alias, field and operation counts over the whole document (alias bombs, field floods), counted
 * when the document is entered: before graphql's own OverlappingFieldsCanBeMerged gives up on a
 * flood with a bare "Validation aborted.".
 */
export function sizeLimitRule(
  limits: Pick<GraphQLLimits, 'maxAliases' | 'maxFields' | 'maxOperations'>,
): ValidationRule {
  return (context: ValidationContext): ASTVisitor => ({
    Document(document) {
      let aliases = 0;
      let fields = 0;
      let definitions = 0;
      graphql.visit(document, {
        Field(node) {
          fields += 1;
          if (node.alias) aliases += 1;
        },
        OperationDefinition() {
          definitions += 1;
        },
        FragmentDefinition() {
          definitions += 1;
        },
      });
      if (aliases > limits.maxAliases)
        context.reportError(
          refuse(GQL_ALIAS_LIMIT, `more than ${limits.maxAliases} aliases (${aliases})`, { limit: limits.maxAliases }),
        );
      if (fields > limits.maxFields)
        context.reportError(
          refuse(GQL_FIELD_LIMIT, `more than ${limits.maxFields} fields (${fields})`, { limit: limits.maxFields }),
        );
      if (definitions > limits.maxOperations)
        context.reportError(
          refuse(GQL_OPERATION_LIMIT, `more than ${limits.maxOperations} operations and fragments (${definitions})`, {
            limit: limits.maxOperations,
          }),
        );
    },
  });
}

/** `__schema` and `__type` are refused (with a code); `__typename` stays available. */
export const noIntrospectionRule: ValidationRule = (context) => ({
  Field(node) {
    if (node.name.value === '__schema' || node.name.value === '__type')
      context.reportError(refuse(GQL_INTROSPECTION_DISABLED, 'introspection is disabled', { field: node.name.value }));
  },
});

/** For HTTP only: a subscription there would run its resolver once and fail obscurely. */
export const noSubscriptionOverHttpRule: ValidationRule = (context) => ({
  OperationDefinition(node) {
    if (node.operation === 'subscription')
      context.reportError(
        refuse(
          GQL_SUBSCRIPTION_NEEDS_WEBSOCKET,
          'subscriptions are served over the graphql-transport-ws websocket on this path',
        ),
      );
  },
});

export function limitRules(limits: GraphQLLimits): ValidationRule[] {
  return [
    sizeLimitRule(limits),
    depthLimitRule(limits),
    costLimitRule(limits),
    ...(limits.introspection ? [] : [noIntrospectionRule]),
  ];
}

/** Validates a parsed document against the schema and the limits (subscriptions skip mercurius' own validation). */
export function validateWithLimits(
  schema: GraphQLSchema,
  document: DocumentNode,
  limits: GraphQLLimits,
): readonly GraphQLErrorType[] {
  return validate(schema, document, [...specifiedRules, ...limitRules(limits)]);
}

/** The mercurius options that apply the limits to HTTP queries. */
export function mercuriusLimitOptions(limits: GraphQLLimits) {
  return {
    // Applied by mercurius to HTTP requests (and websocket queries), never to subscriptions.
    validationRules: [...limitRules(limits), noSubscriptionOverHttpRule],
    allowBatchedQueries: false,
    graphql: { parseOptions: { maxTokens: limits.maxTokens } },
  };
}

/** Resolves the limits from configuration: introspection defaults to on in development only. */
export function resolveGraphQLLimits(
  opts: { production?: boolean; introspection?: boolean; overrides?: Partial<GraphQLLimits> } = {},
): GraphQLLimits {
  return {
    ...DEFAULT_GRAPHQL_LIMITS,
    introspection: opts.introspection ?? !opts.production,
    ...opts.overrides,
  };
}
