Feature: GraphQL refuses queries built to exhaust the server
  Depth bombs, alias bombs, field floods and batches are refused before anything runs, with a
  GraphQL error whose extensions.code says which limit was hit; never a 5xx.

  Scenario Outline: An abusive GraphQL request is refused with a coded error
    When "demo-merchant" sends a GraphQL request with <abuse>
    Then GraphQL refuses it with the code "<code>" and no 5xx

    Examples:
      | abuse                                   | code                                 |
      | a selection nested 40 levels deep       | GRAPHQL_DEPTH_LIMIT                  |
      | 500 aliases of one field                | GRAPHQL_ALIAS_LIMIT                  |
      | 1000 copies of one field                | GRAPHQL_FIELD_LIMIT                  |
      | exponential introspection               | GRAPHQL_COST_LIMIT                   |
      | 10 queries in one batch                 | GRAPHQL_BATCH_LIMIT                  |
      | a page of 1000000 requests              | BAD_USER_INPUT                       |
      | a subscription sent over HTTP           | GRAPHQL_SUBSCRIPTION_NEEDS_WEBSOCKET |
