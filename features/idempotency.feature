Feature: Idempotent registration
  A merchant's backend that retries a registration with the same Idempotency-Key gets the
  first answer again, never a second payment.

  Background:
    Given I am the merchant "demo-merchant"

  Scenario: The same key and body replay the first answer; a changed body is refused
    When I register a payment request for 300000 EUR with a fresh Idempotency-Key
    And I send exactly the same registration again
    Then both answers are 202 with the same id and authId
    When I send the same Idempotency-Key with the amount changed to 300001
    Then I get a 422 problem naming the field "Idempotency-Key"
    And exactly one payment request was registered for that reference
