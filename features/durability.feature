Feature: Nothing accepted is lost
  State lives in the event store under the data directory: it survives a restart, and a
  request answered 202 survives even a kill -9 and still reaches exactly one outcome.

  Scenario: A settled request is still there after a restart
    Given Settle runs on a data directory of its own
    And I am the merchant "demo-merchant"
    And I registered a payment request for 600000 EUR that reached SETTLED
    When Settle is stopped with Ctrl-C
    Then it exits with code 0
    When Settle is started again on the same data directory
    Then the request is still SETTLED with the same timeline

  Scenario: Requests answered 202 just before a kill -9 are all decided exactly once
    Given Settle runs on a data directory of its own
    And I am the merchant "demo-merchant"
    When 50 payment requests are answered 202, every one for an amount ending in 402
    And Settle is killed with SIGKILL at once
    And Settle is started again on the same data directory
    Then within 30 seconds every one of them reaches SETTLED, or DECLINED for an amount ending in 402
    And no timeline holds a repeated event
    And the gateway saw each request at most once per authorisation attempt

  # Known bug (see the features report): the embedded gateway sandbox keeps the capture callbacks
  # it owes in memory, so a kill -9 of the all-in-one process loses them, and Settle has nothing
  # that reconciles an AUTHORIZED request whose capture never arrives: those stay AUTHORIZED.
  Scenario: Requests answered 202 just before a kill -9 all reach exactly one outcome
    Given Settle runs on a data directory of its own
    And I am the merchant "demo-merchant"
    When 50 payment requests are answered 202, every fifth one for an amount ending in 402
    And Settle is killed with SIGKILL at once
    And Settle is started again on the same data directory
    Then within 30 seconds every one of them reaches SETTLED, or DECLINED for an amount ending in 402
    And no timeline holds a repeated event
    And the gateway saw each request at most once per authorisation attempt
