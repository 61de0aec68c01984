# syntax=docker/dockerfile:1
# The police backend's image. Build from the repository root (BuildKit reads the ignore file beside this one):
#   docker build -f deploy/docker/police-backend.Dockerfile -t smartbeacon/police-backend .
# Nothing secret is in it: certificates, keys and the database password are mounted at run time.
# It holds no app-backend or token code (the privacy split; deploy/test/compose.test.ts checks it).

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
WORKDIR /app
RUN groupadd --system --gid 10002 smartbeacon \
 && useradd --system --uid 10002 --gid 10002 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin smartbeacon
COPY --from=deps /app/node_modules ./node_modules
# package.json says "type": "module": without it Node would not load dist/ as ES modules.
COPY package.json ./
# Only what the service and its two tools (add-officer, audit-verify) import.
COPY --from=build /src/dist/backend-kit/*.js ./dist/backend-kit/
COPY --from=build /src/dist/police-backend/src/*.js ./dist/police-backend/src/
COPY --from=build /src/police-backend/dashboard/dist ./police-backend/dashboard/dist
COPY --from=build /src/dist/deploy/docker/healthcheck.js ./dist/deploy/docker/
COPY police-backend/migrations ./police-backend/migrations
COPY --chmod=0755 deploy/bin/secret-env.sh /usr/local/bin/secret-env
USER 10002:10002
EXPOSE 9443 9444
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "dist/deploy/docker/healthcheck.js", "police-backend"]
ENTRYPOINT ["secret-env"]
CMD ["node", "dist/police-backend/src/main.js"]
