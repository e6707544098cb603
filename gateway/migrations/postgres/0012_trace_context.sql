-- OpenTelemetry: the W3C `traceparent` of the span that accepted an event
-- (NULL when tracing is off and the caller sent none), kept with the event
-- and each of its deliveries, so every attempt joins the event's trace.
ALTER TABLE events ADD COLUMN trace_context TEXT;
ALTER TABLE deliveries ADD COLUMN trace_context TEXT;
