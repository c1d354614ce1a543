// Review notifications: outbound webhooks (generic signed JSON, Slack) when a
// review is created or decided, and the signature checks for callbacks.
export { REVIEW_EVENT_TYPES, type ReviewEventType, type ReviewSummary, type WebhookTarget } from "./types.js";
export { genericBody, pickSummary } from "./generic.js";
export { slackMessage, escapeMrkdwn, STATEMENT_LIMIT } from "./slack.js";
export {
  signWebhook,
  verifyWebhookSignature,
  verifySlackSignature,
  DEFAULT_TOLERANCE_SEC,
  SIGNATURE_HEADER,
  EVENT_HEADER,
  DELIVERY_HEADER,
  SLACK_SIGNATURE_HEADER,
  SLACK_TIMESTAMP_HEADER,
  type SignatureFailure,
} from "./signature.js";
export { ReviewNotifier, type ReviewNotifierOptions } from "./notifier.js";
