Feature: A failing event parks only its stream
  When a projection cannot fold an event, only that request's stream is parked for that
  projection: its later events wait, every other request keeps flowing, and an operator sees
  the parked stream with its error and retries or skips it with `npx settle dlq`.

  Scenario: An event that makes one projection throw parks only its stream; after a skip it resumes in order
    Given Settle runs with the requests projection failing on references starting "poison-"
    And I am the merchant "demo-merchant"
    When I register a payment request for 1000 EUR with a reference starting "poison-"
    And I registered a payment request for 2000 EUR that reached SETTLED
    Then "npx settle dlq list" shows the poisoned request's stream parked in "requests" with its error
    And GraphQL still shows the poisoned request AUTHORIZING while REST shows it SETTLED
    When I run "npx settle dlq retry" for the poisoned request's stream
    Then the command exits with code 1 and says it failed again
    When I run "npx settle dlq skip" for the poisoned request's stream
    Then the command exits with code 0
    And GraphQL shows the poisoned request SETTLED, its later events in order, without the failed one
    And "npx settle dlq list" shows no parked stream
