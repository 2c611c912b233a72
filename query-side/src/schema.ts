/**
 * The GraphQL schema (DESIGN.md, "Query side"). Money amounts and log positions are Strings:
 * amounts reach 10^12 minor units and sums go beyond 2^53, positions are 64-bit in PostgreSQL,
 * and GraphQL's Int is 32-bit. `DateTime` is an ISO 8601 instant, answered in UTC with
 * milliseconds (`2026-04-01T09:30:00.000Z`).
 */
export const schema = /* GraphQL */ `
  scalar DateTime

  enum RequestStatus {
    REGISTERED
    AUTHORIZING
    AUTHORIZED
    SETTLED
    DECLINED
    FAILED
    CANCELLED
    ARCHIVED
  }

  type RequestEvent {
    type: String!
    position: String!
    occurredAt: DateTime!
  }

  type Request {
    id: ID!
    authId: String!
    merchantId: ID!
    "Integer minor units, as a string."
    amount: String!
    currency: String!
    status: RequestStatus!
    reference: String!
    description: String
    callbackUrl: String
    attempts: Int!
    "The last authorisation error, as code: message."
    lastError: String
    events: [RequestEvent!]!
    createdAt: DateTime!
    updatedAt: DateTime!
    "Stream revision (the REST ETag)."
    version: Int!
  }

  input RequestFilter {
    status: [RequestStatus!]
    merchantId: ID
    "Registered at or after this instant."
    from: DateTime
    "Registered at or before this instant."
    to: DateTime
  }

  type PageInfo {
    hasNextPage: Boolean!
    endCursor: String
  }
  type RequestEdge {
    cursor: String!
    node: Request!
  }
  type RequestConnection {
    edges: [RequestEdge!]!
    nodes: [Request!]!
    pageInfo: PageInfo!
    totalCount: Int!
  }

  type CurrencyAmount {
    currency: String!
    amount: String!
  }

  type MerchantStats {
    "Null when the figures cover every merchant (operators)."
    merchantId: ID
    from: DateTime
    to: DateTime
    registered: Int!
    settled: Int!
    declined: Int!
    failed: Int!
    cancelled: Int!
    "registered - settled - declined - failed - cancelled"
    inFlight: Int!
    registeredAmounts: [CurrencyAmount!]!
    settledAmounts: [CurrencyAmount!]!
  }

  type Preferences {
    userId: ID!
    defaultCurrency: String
    locale: String
    timezone: String
    notifyOn: [RequestStatus!]!
    updatedAt: DateTime
  }

  input PreferencesInput {
    defaultCurrency: String
    locale: String
    timezone: String
    notifyOn: [RequestStatus!]
  }

  "A stream a projection or reactor group stopped at: its later events wait until an operator retries or skips."
  type ParkedStream {
    "The projection, or consumer:<group> for a reactor group."
    owner: String!
    streamId: ID!
    eventId: ID!
    eventType: String!
    "Global position of the failing event."
    position: String!
    error: String!
    attempts: Int!
    parkedAt: String!
    "retry or skip, while an operator's request waits to be carried out."
    pendingAction: String
  }

  "A Kafka message a reactor group gave up on, in <topic>.dlq (the Kafka bus only)."
  type DeadLetter {
    "<topic>/<partition>/<offset>"
    id: ID!
    topic: String!
    partition: Int!
    offset: String!
    key: String
    group: String!
    attempts: Int!
    error: String!
    errorCode: String!
    failedAt: String!
    originalTopic: String!
    originalPartition: Int!
    originalOffset: String!
    eventType: String
    streamId: String
    position: String
  }

  type ProjectionStatus {
    name: String!
    version: Int!
    state: String!
    position: String!
    headPosition: String!
    lagEvents: Int!
    lagSeconds: Float!
    parkedStreams: [String!]!
  }

  type Query {
    "asOf: a global position (digits) or an ISO time: the request as it was then (time travel)."
    request(id: ID!, asOf: String, minPosition: String): Request
    "Newest first. first: 1 to 100."
    requests(filter: RequestFilter, first: Int = 20, after: String, minPosition: String): RequestConnection!
    "Sums the UTC days of registration from 'from' to 'to', both inclusive."
    merchantStats(merchantId: ID, from: DateTime, to: DateTime, minPosition: String): MerchantStats!
    preferences: Preferences
    "Operators and admins."
    projections: [ProjectionStatus!]!
    "Operators and admins: every parked stream of the projections and reactor groups, with its error."
    parkedStreams: [ParkedStream!]!
    "Operators and admins: Kafka dead letters not yet retried or skipped (empty on the embedded bus)."
    deadLetters: [DeadLetter!]!
  }

  type Mutation {
    registerPreferences(input: PreferencesInput!): Preferences!
    "Operators and admins."
    rebuildProjection(name: String!): ProjectionStatus!
    "Operators and admins."
    rollbackProjection(name: String!): ProjectionStatus!
    "Operators and admins: re-applies the stream's held events from the failed one; true once it flows again, false if an event failed again (still parked, with the new error)."
    retryParked(streamId: ID!): Boolean!
    "Operators and admins: skips the failing event and applies the rest; true once the stream flows again."
    skipParked(streamId: ID!): Boolean!
    "Operators and admins: re-drives a dead letter (id <topic>/<partition>/<offset>) to its original topic, for its group."
    retryDeadLetter(id: ID!): Boolean!
    "Operators and admins: acknowledges a dead letter without handling it (it is listed no more)."
    skipDeadLetter(id: ID!): Boolean!
  }

  type Subscription {
    "Every change of a request the principal may see, optionally narrowed to one request or merchant."
    requestUpdated(id: ID, merchantId: ID): Request!
  }
`;
