CREATE TABLE "locks" (
	"resource" text PRIMARY KEY NOT NULL,
	"session_id" uuid NOT NULL,
	"user_id" integer NOT NULL,
	"acquired_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "locks_resource_length" CHECK (char_length("locks"."resource") between 1 and 200)
);
--> statement-breakpoint
ALTER TABLE "locks" ADD CONSTRAINT "locks_session_id_sessions_id_fk" FOREIGN KEY ("session_id") REFERENCES "public"."sessions"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "locks_session_idx" ON "locks" USING btree ("session_id");