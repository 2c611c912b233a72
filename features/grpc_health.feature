Feature: The payments gRPC service reports its health
  Load balancers and Kubernetes probe the payments service with the standard gRPC health
  checking protocol (grpc.health.v1.Health).

  Scenario Outline: Health checks answer for the server and for the payments service
    When I check the health of "<service>" on the payments gRPC port
    Then the health check answers SERVING

    Examples:
      | service                     |
      |                             |
      | settle.payments.v1.Payments |

  Scenario: An unknown service is reported as not found
    When I check the health of "no.such.Service" on the payments gRPC port
    Then the health check fails with NOT_FOUND
