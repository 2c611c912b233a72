Feature: Gateway callbacks must be genuine
  The gateway's webhooks are signed (Standard Webhooks). Settle refuses a callback whose
  signature does not verify, and the request stays exactly as it was.

  Background:
    Given I am the merchant "demo-merchant"
    And I registered a payment request for 700402 EUR that reached DECLINED

  Scenario Outline: A forged callback is refused and changes nothing
    When a payment.captured callback for it arrives <forgery>
    Then the callback is refused with a 401 problem
    And the request's status and timeline are unchanged

    Examples:
      | forgery                                 |
      | signed with the wrong secret            |
      | with its body changed after signing     |
      | signed more than five minutes ago       |
      | with an empty signature                 |
      | without signature headers               |

  Scenario: A genuine callback is accepted (the check above is not vacuous)
    When a payment.captured callback for it arrives signed with the sandbox secret
    Then the callback is accepted
    And its timeline gains a CallbackReceived event
