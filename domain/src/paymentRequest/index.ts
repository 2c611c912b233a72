import type { Decider } from '../envelope.js';
import { decide, type PaymentRequestCommand } from './decide.js';
import type { PaymentRequestEvent } from './events.js';
import { evolve, initialState, type PaymentRequestState } from './state.js';

export * from './events.js';
export * from './state.js';
export * from './decide.js';

export const paymentRequestDecider: Decider<PaymentRequestState, PaymentRequestCommand, PaymentRequestEvent> = {
  initialState,
  decide,
  evolve,
};
