CREATE TABLE "session_event_outbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"session_id" uuid NOT NULL,
	"version" integer NOT NULL,
	"event" jsonb NOT NULL,
	"keep_until" timestamp with time zone NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "session_event_outbox" ADD CONSTRAINT "session_event_outbox_session_id_sessions_id_fk" FOREIGN KEY ("session_id") REFERENCES "public"."sessions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "session_event_outbox_session_idx" ON "session_event_outbox" USING btree ("session_id","id");--> statement-breakpoint
CREATE INDEX "session_event_outbox_created_idx" ON "session_event_outbox" USING btree ("created_at");