Feature: Hostile input is refused and leaves no trace
  Bodies and parameters built to break parsers, pollute prototypes, inject queries or exhaust
  memory are answered with a problem+json naming what is wrong, and the event store does not move.

  Background:
    Given I am the merchant "demo-merchant"

  Scenario: A body over 64 KiB is refused with 413
    When I register a payment request whose description makes the body larger than 64 KiB
    Then I get a 413 problem naming the field "body"
    And nothing was appended to the event store

  Scenario Outline: A registration built to attack the server is refused
    When I register a payment request with the body <body>
    Then I get a <status> problem naming the field "<field>"
    And nothing was appended to the event store

    Examples:
      | body                                                                                                        | status | field       |
      | {"amount": 1000, "currency": "EUR", "reference": "proto", "__proto__": {"isAdmin": true}}                   | 400    | body        |
      | {"amount": 1000, "currency": "EUR", "reference": "ctor", "constructor": {"prototype": {"isAdmin": true}}}   | 400    | body        |
      | {"amount": 1000, "currency": "EUR", "reference": "' OR 1=1; DROP TABLE events; --\\u0000"}                 | 400    | reference   |
      | {"amount": 1000, "currency": {"$gt": ""}, "reference": "nosql"}                                             | 400    | currency    |
      | {"amount": 1e400, "currency": "EUR", "reference": "infinite"}                                               | 400    | amount      |
      | {"amount": 1000000000001, "currency": "EUR", "reference": "too-much"}                                       | 400    | amount      |
      | {"amount": 1000, "currency": "EUR", "reference": "meta", "metadata": {"k": {"nested": true}}}               | 400    | metadata.k  |
      | {"amount": 1000, "currency": "EUR", "reference": "crlf\\r\\nX-Injected: 1"}                                 | 400    | reference   |

  Scenario: An Idempotency-Key longer than 255 characters is refused
    When I register a valid payment request with an Idempotency-Key of 256 characters
    Then I get a 400 problem naming the field "idempotency-key"
    And nothing was appended to the event store

  Scenario Outline: A hostile request id is refused without reaching the event store
    When I fetch the payment request with the id "<id>"
    Then I get a 400 problem naming the field "id"

    Examples:
      | id                    |
      | ' OR '1'='1           |
      | $where                |
      | ../../etc/passwd      |
      | 1; DROP TABLE events  |
