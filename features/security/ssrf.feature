Feature: Callback URLs cannot be aimed inside the network
  A merchant's callbackUrl is where Settle will POST webhooks. A hostile merchant tries to make
  Settle call cloud metadata, private networks or itself; every such URL is refused at
  registration with a 422 naming callbackUrl, and nothing is stored. (Development mode allows
  loopback, and nothing else private.)

  Background:
    Given I am the merchant "demo-merchant"

  Scenario Outline: A callback URL pointing at a forbidden address is refused
    When I register a payment request with the callback URL "<url>"
    Then I get a 422 problem naming the field "callbackUrl"
    And nothing was appended to the event store

    Examples:
      | url                                       |
      | http://169.254.169.254/latest/meta-data/  |
      | http://10.1.2.3/                          |
      | http://[::ffff:a9fe:a9fe]/                |
      | http://100.64.0.1/                        |
      | http://[fd00::1]/                         |
      | http://192.168.1.1:8080/admin             |
      | http://[fe80::1]/                         |
      | http://[2002:a9fe:a9fe::1]/               |
      | http://[64:ff9b::a9fe:a9fe]/              |
      | http://0xa9fea9fe/                        |
      | http://2852039166/                        |
      | http://224.0.0.1/                         |
      | http://0.0.0.0/                           |
      | http://93.184.215.14/                     |
      | file:///etc/passwd                        |
      | gopher://merchant.example/                |
      | https://user:secret@merchant.example/hook |
      | https://settle-ssrf-check.invalid/hook    |
