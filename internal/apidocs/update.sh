#!/usr/bin/env bash
# Re-downloads Stoplight Elements from the npm registry into assets/.
#
#   ./update.sh            re-fetch the version pinned in apidocs.go
#   ./update.sh 9.0.26     fetch another version and pin it in apidocs.go
#
# The pinned version lives in one place: the ElementsVersion constant in
# apidocs.go. This script reads it from there and, when given another version,
# rewrites it there. Only what the browser needs is copied, plus the licenses:
#
#   web-components.min.js              the <elements-api> web component
#   web-components.min.js.LICENSE.txt  notices of the libraries bundled in it
#   styles.min.css                     its stylesheet
#   LICENSE                            Elements' own license (Apache-2.0)
#
# Needs bash, npm and tar. Afterwards run: go test ./internal/apidocs/
set -euo pipefail

cd "$(dirname "$0")"

PACKAGE="@stoplight/elements"
FILES=(web-components.min.js web-components.min.js.LICENSE.txt styles.min.css LICENSE)

pinned=$(sed -n 's/^const ElementsVersion = "\(.*\)"$/\1/p' apidocs.go)
if [ -z "$pinned" ]; then
  echo "update.sh: no 'const ElementsVersion = \"...\"' line in apidocs.go" >&2
  exit 1
fi
VERSION="${1:-$pinned}"
if ! [[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
  echo "update.sh: want a version like 9.0.25, got '$VERSION'" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# npm pack fetches the published tarball and checks it against the registry's
# integrity hash; nothing is installed and no install scripts run.
(cd "$work" && npm pack --loglevel=error "$PACKAGE@$VERSION" >/dev/null)
tar -xzf "$work"/*.tgz -C "$work"

got=$(node -p 'require(process.argv[1]).version' "$work/package/package.json")
if [ "$got" != "$VERSION" ]; then
  echo "update.sh: asked for $VERSION, the tarball says $got" >&2
  exit 1
fi
for f in "${FILES[@]}"; do
  if [ ! -s "$work/package/$f" ]; then
    echo "update.sh: $PACKAGE@$VERSION has no $f; check what the package ships" >&2
    exit 1
  fi
done

rm -rf assets
mkdir assets
for f in "${FILES[@]}"; do
  cp "$work/package/$f" "assets/$f"
  chmod 0644 "assets/$f"
done

if [ "$VERSION" != "$pinned" ]; then
  sed -i "s/^const ElementsVersion = \".*\"$/const ElementsVersion = \"$VERSION\"/" apidocs.go
fi

# What the assets could load from elsewhere at run time. The page must work
# offline, so read this list after every update (see the package comment in
# apidocs.go for what 9.0.25 references and why it is harmless).
echo "update.sh: $PACKAGE@$VERSION copied into assets/:"
ls -l assets
echo "update.sh: absolute URLs in styles.min.css (want none):"
grep -o 'https\?://[^"'"'"' )]*' assets/styles.min.css | sort -u || true
echo "update.sh: scripts the bundle may inject at run time (want only the mermaid one):"
grep -o 'https://[^"]*\.js"' assets/web-components.min.js | tr -d '"' | sort -u || true
