Feature: A payment request runs to its outcome
  A merchant registers a payment request; Settle authorises it with the gateway, follows the
  gateway's callbacks, and shows where it stands over REST and GraphQL. The gateway sandbox
  picks its answer by the amount's last three digits, like test cards.

  Background:
    Given I am the merchant "demo-merchant"

  Scenario: An ordinary payment settles within seconds
    When I register a payment request for 100000 EUR
    Then it is accepted with status REGISTERED and a Location for it
    And the request reaches SETTLED within 5 seconds
    And REST and GraphQL agree that it is SETTLED after 1 attempt
    And its timeline holds each of these events exactly once:
      | RequestRegistered             |
      | PaymentAuthorizationRequested |
      | PaymentAuthorized             |
      | CallbackReceived              |
      | PaymentSettled                |

  Scenario: The gateway declines the payment
    When I register a payment request for 100402 EUR
    Then the request reaches DECLINED within 5 seconds
    And REST and GraphQL agree that it is DECLINED after 1 attempt
    And its timeline ends with PaymentDeclined

  Scenario: A gateway outage is retried until the payment settles
    When I register a payment request for 100503 EUR
    Then the request reaches SETTLED within 15 seconds
    And REST and GraphQL agree that it is SETTLED after 3 attempts
    And the gateway was asked to authorise it 3 times

  Scenario: A gateway that keeps failing makes the request fail after 5 attempts
    When I register a payment request for 100500 EUR
    Then the request reaches FAILED within 30 seconds
    And REST and GraphQL agree that it is FAILED after 5 attempts
    And its timeline ends with PaymentFailed
    And the gateway was asked to authorise it 5 times
