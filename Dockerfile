# Settle's roles share one image; `settle start --roles …` picks what a container runs.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.base.json ./
COPY proto proto
COPY domain domain
COPY platform platform
COPY command-side command-side
COPY query-side query-side
COPY projections projections
COPY reactors reactors
COPY payments payments
COPY cli cli
COPY features/package.json features/package.json
COPY infra/package.json infra/package.json
COPY bench/package.json bench/package.json
RUN npm ci --no-audit --no-fund && npx tsc -b cli && npm prune --omit=dev

FROM node:24-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production SETTLE_HOST=0.0.0.0
COPY --from=build /app /app
USER node
EXPOSE 3000 50051 4010
ENTRYPOINT ["node", "cli/bin/settle.js"]
CMD ["start"]
