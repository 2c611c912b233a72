Feature: Following a request live
  A GraphQL subscriber to requestUpdated(id) receives the request's status changes as they
  happen, up to its outcome.

  Scenario: A subscriber follows a request through retries to SETTLED
    Given I am the merchant "demo-merchant"
    And I registered a payment request for 500503 EUR
    When "demo-merchant" subscribed to updates of that request
    And "demo-merchant"'s subscription receives SETTLED within 15 seconds
    Then the status changes received end with AUTHORIZING, AUTHORIZED, SETTLED
    And every update received was for that request
