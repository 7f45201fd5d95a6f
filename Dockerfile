# syntax=docker/dockerfile:1
# One image for every role: ROLE=api, ROLE=worker or ROLE=all (docs/operations.md).
# The Node line is the one of package.json's "engines" and of CI (Node 20): a test
# (test/ops/node-line.test.ts) fails when they part.
ARG NODE_VERSION=20.20

# ---- build: all dependencies, type-check and compile to dist/, build the browser pages ----
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY db ./db
COPY client ./client
COPY scripts/build-client.ts ./scripts/
RUN npm run build

# ---- production dependencies only ----
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# ---- runtime ----
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/db ./dist/db
# The demo app (/) and the admin dashboard (/admin), served by every API process.
COPY --from=build /app/dist/client/pages ./dist/client/pages
# Read at run time from <root>/db/migrations (projectRoot() in src/infra/db.ts).
COPY db/migrations ./db/migrations
# NAME_FILE → NAME for Docker secrets (SESSION_SECRET_FILE=/run/secrets/…), then the command.
COPY deploy/docker-entrypoint.sh /usr/local/bin/tessera-entrypoint
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 3000 3001
# Healthy = ready: PostgreSQL, Redis and the queues answer (/readyz). An api process
# listens on PORT, a worker on WORKER_PORT. Compose waits for it before it starts the
# proxy, and `docker compose up --wait` for a rolling restart (docs/operations.md).
HEALTHCHECK --interval=5s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const p=process.env.ROLE==='worker'?(process.env.WORKER_PORT||3001):(process.env.PORT||3000);fetch('http://127.0.0.1:'+p+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
ENTRYPOINT ["tessera-entrypoint"]
CMD ["node", "dist/src/main.js"]
