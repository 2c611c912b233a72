Feature: Bad input never reaches the event store
  An invalid registration is answered with a problem+json naming the offending field, and
  nothing is stored.

  Background:
    Given I am the merchant "demo-merchant"

  Scenario Outline: An invalid registration is refused with the field named
    When I register a payment request with the body <body>
    Then I get a <status> problem naming the field "<field>"
    And nothing was appended to the event store

    Examples:
      | body                                                                 | status | field     |
      | {"amount": 1000, "currency": "EURO", "reference": "bad-currency"}    | 400    | currency  |
      | {"amount": 1000, "currency": "eur", "reference": "lower-currency"}   | 400    | currency  |
      | {"amount": 1000, "currency": "QQQ", "reference": "unknown-currency"} | 422    | currency  |
      | {"amount": -1000, "currency": "EUR", "reference": "negative"}        | 400    | amount    |
      | {"amount": 0, "currency": "EUR", "reference": "zero"}                | 400    | amount    |
      | {"amount": 10.5, "currency": "EUR", "reference": "fractional"}       | 400    | amount    |
      | {"amount": "1000", "currency": "EUR", "reference": "string-amount"}  | 400    | amount    |
      | {"amount": 1000, "currency": "EUR"}                                  | 400    | reference |
      | {"currency": "EUR", "reference": "no-amount"}                        | 400    | amount    |
      | {"amount": 1000, "currency": "EUR", "reference": "x", "colour": "red"} | 400  | colour    |

  Scenario: A body over 1 MiB is refused with 413
    When I register a payment request whose description makes the body larger than 1 MiB
    Then I get a 413 problem naming the field "body"
    And nothing was appended to the event store
