Feature: A replayed gateway callback changes nothing
  The gateway may deliver a callback twice, and an attacker may replay one they captured. The
  repeated webhook-id is acknowledged (so the gateway stops retrying) and ignored. Forged and
  expired callbacks are in gateway_callbacks.feature.

  Background:
    Given I am the merchant "demo-merchant"
    And I registered a payment request for 700402 EUR that reached DECLINED

  Scenario: The same signed callback delivered twice is recorded once
    When the same genuine payment.captured callback for it arrives twice
    Then both deliveries are acknowledged, the second as a duplicate
    And its timeline gains a CallbackReceived event
