# syntax=docker/dockerfile:1
# The app backend's image. Build from the repository root (BuildKit reads the ignore file beside this one):
#   docker build -f deploy/docker/app-backend.Dockerfile -t smartbeacon/app-backend .
# Nothing secret is in it: certificates, keys, APP_KEK and the database password are mounted at
# run time and named by *_FILE variables (deploy/README.md).

FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# No install scripts: the native BLE, USB and serial modules serve the beacon tools, not the services.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build

FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM node:20-bookworm-slim
ENV NODE_ENV=production
# Memory at national scale (deploy/runtime-env.ts; measured in docs/BENCHMARKS.md).
ENV NODE_OPTIONS=--max-semi-space-size=8 MALLOC_ARENA_MAX=2
WORKDIR /app
RUN groupadd --system --gid 10001 smartbeacon \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin smartbeacon
COPY --from=deps /app/node_modules ./node_modules
# package.json says "type": "module": without it Node would not load dist/ as ES modules.
COPY package.json ./
# Only what the service imports (deploy/test/compose.test.ts follows the imports to check it).
COPY --from=build /src/dist/backend-kit/*.js ./dist/backend-kit/
COPY --from=build /src/dist/protocol/*.js ./dist/protocol/
COPY --from=build /src/dist/protocol/token/*.js ./dist/protocol/token/
COPY --from=build /src/dist/app-backend/src/*.js ./dist/app-backend/src/
COPY --from=build /src/dist/deploy/docker/healthcheck.js ./dist/deploy/docker/
COPY app-backend/migrations ./app-backend/migrations
COPY --chmod=0755 deploy/bin/secret-env.sh /usr/local/bin/secret-env
USER 10001:10001
EXPOSE 8443 8444
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "dist/deploy/docker/healthcheck.js", "app-backend"]
ENTRYPOINT ["secret-env"]
# The V8 flag NODE_OPTIONS refuses (deploy/runtime-env.ts).
CMD ["node", "--heap-growing-percent=50", "dist/app-backend/src/main.js"]
