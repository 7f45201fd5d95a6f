ALTER TABLE "sessions" ADD COLUMN "end_tab_id" text;--> statement-breakpoint
ALTER TABLE "sessions" ADD COLUMN "finalized_at" timestamp with time zone;--> statement-breakpoint
CREATE INDEX "sessions_unfinalized_idx" ON "sessions" USING btree ("ended_at") WHERE "sessions"."status" = 'ended' and "sessions"."finalized_at" is null;--> statement-breakpoint
-- Endings from before this migration count as finished: the repair pass is for new ones.
UPDATE "sessions" SET "finalized_at" = "ended_at" WHERE "status" = 'ended';
