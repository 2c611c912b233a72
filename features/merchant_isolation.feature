Feature: Merchants see only their own requests
  A merchant can neither read, list, cancel nor follow another merchant's payment request;
  an operator sees every request.

  Scenario: Another merchant cannot see or touch a request; an operator can
    Given the merchant "demo-merchant" registered a payment request for 400503 EUR
    And "demo-merchant-2" subscribed to updates of that request
    And "demo-merchant" subscribed to updates of that request
    Then "demo-merchant-2" gets 404 when fetching it over REST
    And "demo-merchant-2" gets nothing when asking GraphQL for it
    And "demo-merchant-2" does not find it when listing requests
    And "demo-merchant-2" gets 404 when cancelling it
    And "demo-merchant-2" is refused a subscription to the updates of "demo-merchant"
    When "demo-merchant"'s subscription receives SETTLED within 15 seconds
    Then "demo-merchant-2"'s subscription received nothing
    And "demo-operator" sees it SETTLED over REST, GraphQL and in the list of requests
