Feature: Cancelling a payment request
  A merchant may cancel a request until the gateway has authorised it; after that the
  request's outcome stands.

  Background:
    Given I am the merchant "demo-merchant"

  Scenario: A request waiting to retry the gateway is cancelled, and the gateway is not called again
    Given I registered a payment request for 200500 EUR
    And the request is waiting to retry after a failed attempt
    When I cancel the request
    Then it is accepted with status CANCELLED
    And the request reaches CANCELLED within 5 seconds
    And once its retry was due, it is still CANCELLED after 1 attempt
    And the gateway was asked to authorise it 1 time

  Scenario: A settled request cannot be cancelled
    Given I registered a payment request for 200000 EUR that reached SETTLED
    When I cancel the request
    Then I get a 409 problem
    And the request is still SETTLED
