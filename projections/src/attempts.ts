/** The attempt markers live in the platform (the embedded bus counts crash loops the same way). */
export { CRASH_LOOP_ATTEMPTS, decodeMarker, encodeMarker, type AttemptMarker } from '@settle/platform';
