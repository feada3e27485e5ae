#!/bin/sh
# A persistent workq handler in plain shell with jq:
#   workq-work --persistent QUEUE -- ./persistent-upper.sh
# One JSON request per line on stdin; one JSON reply per line on stdout.
while IFS= read -r request; do
    id=$(printf '%s' "$request" | jq -r .id)
    payload=$(printf '%s' "$request" | jq -r '.payload // empty')
    if [ -z "$payload" ]; then
        jq -cn --arg id "$id" '{id: $id, ok: false, error: "empty or binary payload", retry: false}'
        continue
    fi
    result=$(printf '%s' "$payload" | tr '[:lower:]' '[:upper:]')
    jq -cn --arg id "$id" --arg result "$result" '{id: $id, ok: true, result: $result}'
done
