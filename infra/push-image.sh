#!/usr/bin/env bash
# Builds the push service image and pushes it to the stack's ECR repository; prints the image
# reference to deploy as the stack's PushServiceImage parameter (the only line on stdout;
# progress goes to stderr).
#
#   bash infra/push-image.sh --binary target/.../changewatch-push-service     # no Docker
#   bash infra/push-image.sh --method buildx                                   # with Docker
#
# Two ways to make the image (--method, default auto = buildx when it works, else oci):
#
#   buildx  `docker buildx build -f infra/Dockerfile --push` for the stack's platform. The
#           Dockerfile compiles the binary and the dashboard itself; --binary is not used. On a
#           host of the other architecture the Rust build runs under QEMU emulation: slow.
#   oci     No container engine at all. A prebuilt binary and the built dashboard become one
#           layer on top of a small base image, assembled as an OCI image layout with skopeo
#           (pulls the base, pushes the result) and umoci (adds the layer, sets the config):
#           both are Debian packages (`apt-get install skopeo umoci`). The binary must be
#           built for the stack's architecture and may need nothing but glibc and libgcc_s,
#           i.e. libxml2 linked statically: `eval "$(bash infra/build-libxml2.sh arm64)"`
#           before `cargo build --release -p changewatch-push-service` does that, and so does
#           `make push-image`. The default base, distroless cc-debian12, has glibc 2.36, CA
#           certificates and nothing else (no shell, no package manager).
#
# Options (environment variable in brackets):
#   --stack NAME          CloudFormation stack [CW_STACK_NAME; default changewatch]
#   --region REGION       AWS region [AWS_REGION, AWS_DEFAULT_REGION, else the CLI's config]
#   --repository URI      ECR repository [default: the stack's PushServiceRepositoryUri output]
#   --arch arm64|x86_64   image architecture [default: the stack's Architecture parameter]
#   --tag TAG             image tag [default: <commit>[-dirty]-<UTC time>; the repository's
#                         tags are immutable, so every push needs a new one]
#   --method auto|buildx|oci
#   --binary PATH         oci: the changewatch-push-service executable [CW_PUSH_BINARY]
#   --dashboard DIR       oci: the built dashboard [CW_DASHBOARD_DIR; default dashboard/dist]
#   --base IMAGE          oci: base image: a registry reference, a skopeo source such as
#                         oci:DIR:TAG (a base pulled earlier), or `scratch` for none (then the
#                         binary must be static) [CW_BASE_IMAGE; default
#                         gcr.io/distroless/cc-debian12]
#   --oci-dir DIR         oci: assemble into this OCI layout and stop: no AWS call, no push
#                         (needs --arch; with --base scratch it works offline)
#   --deploy              after the push, update the stack's PushServiceImage parameter only
#                         (every other parameter and the deployed template stay as they are)
#
# Needs: the AWS CLI (ECR login, stack lookups) except with --oci-dir; git for the default tag.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

stack="${CW_STACK_NAME:-changewatch}"
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"
repository=""
arch=""
tag=""
method="auto"
binary="${CW_PUSH_BINARY:-}"
dashboard="${CW_DASHBOARD_DIR:-$root/dashboard/dist}"
base="${CW_BASE_IMAGE:-gcr.io/distroless/cc-debian12}"
oci_out=""
deploy=0

die() { echo "push-image: $*" >&2; exit 1; }
log() { echo "push-image: $*" >&2; }
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }

while [ $# -gt 0 ]; do
  case "$1" in
    --stack) stack="${2:?}"; shift 2 ;;
    --region) region="${2:?}"; shift 2 ;;
    --repository) repository="${2:?}"; shift 2 ;;
    --arch) arch="${2:?}"; shift 2 ;;
    --tag) tag="${2:?}"; shift 2 ;;
    --method) method="${2:?}"; shift 2 ;;
    --binary) binary="${2:?}"; shift 2 ;;
    --dashboard) dashboard="${2:?}"; shift 2 ;;
    --base) base="${2:?}"; shift 2 ;;
    --oci-dir) oci_out="${2:?}"; shift 2 ;;
    --deploy) deploy=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

case "$method" in auto|buildx|oci) ;; *) die "--method must be auto, buildx or oci" ;; esac
if [ -n "$oci_out" ]; then
  [ "$method" != buildx ] || die "--oci-dir assembles an OCI layout; it cannot go with --method buildx"
  method=oci
  [ "$deploy" = 0 ] || die "--oci-dir pushes nothing, so there is nothing to --deploy"
  [ -n "$arch" ] || die "--oci-dir needs --arch (the stack is not looked up)"
fi

aws_args=()
[ -z "$region" ] || aws_args+=(--region "$region")

stack_value() { # $1: JMESPath below Stacks[0]
  aws "${aws_args[@]}" cloudformation describe-stacks --stack-name "$stack" \
    --query "Stacks[0].$1 | [0]" --output text
}

if [ -z "$oci_out" ]; then
  command -v aws >/dev/null 2>&1 || die "the AWS CLI is needed (python3 -m pip install awscli)"
  if [ -z "$repository" ]; then
    repository="$(stack_value "Outputs[?OutputKey=='PushServiceRepositoryUri'].OutputValue")" ||
      die "cannot read stack $stack (deploy it first, or pass --repository)"
    case "$repository" in ""|None) die "stack $stack has no PushServiceRepositoryUri output; deploy the current template first" ;; esac
  fi
  if [ -z "$arch" ]; then
    arch="$(stack_value "Parameters[?ParameterKey=='Architecture'].ParameterValue")" ||
      die "cannot read stack $stack's Architecture; pass --arch"
  fi
  # <account>.dkr.ecr.<region>.amazonaws.com/<name>: the login must be for that region.
  registry="${repository%%/*}"
  repo_region="$(printf '%s\n' "$registry" | sed -n 's/^[0-9]*\.dkr\.ecr\.\([a-z0-9-]*\)\.amazonaws\.com.*$/\1/p')"
  [ -n "$repo_region" ] || die "$repository does not look like an ECR repository URI"
fi

case "$arch" in
  arm64) goarch=arm64; elf_machine="AArch64" ;;
  x86_64) goarch=amd64; elf_machine="X86-64" ;;
  *) die "architecture must be arm64 or x86_64, not '$arch'" ;;
esac

if [ -z "$tag" ]; then
  rev="$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || echo nogit)"
  if [ "$rev" != nogit ] && [ -n "$(git -C "$root" status --porcelain 2>/dev/null)" ]; then
    rev="$rev-dirty"
  fi
  tag="$rev-$(date -u +%Y%m%d%H%M%S)"
fi
printf '%s\n' "$tag" | grep -Eq '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$' || die "invalid tag '$tag'"

if [ "$method" = auto ]; then
  # `buildx inspect --bootstrap` fails unless a builder (and its engine) is really there.
  if command -v docker >/dev/null 2>&1 && docker buildx inspect --bootstrap >/dev/null 2>&1; then
    method=buildx
  else
    method=oci
  fi
  log "method: $method"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

ecr_password() {
  aws --region "$repo_region" ecr get-login-password
}

# ---------------------------------------------------------------------------------------------
build_with_buildx() {
  log "logging docker in to $registry"
  ecr_password | docker login --username AWS --password-stdin "$registry" >/dev/null
  # One plain image manifest: provenance and SBOM attestations would be stored as extra
  # untagged artifacts that count against the repository's keep-10 lifecycle rule.
  docker buildx build \
    --platform "linux/$goarch" \
    --file "$here/Dockerfile" \
    --provenance=false --sbom=false \
    --tag "$repository:$tag" \
    --metadata-file "$work/metadata.json" \
    --push \
    "$root"
  digest="$(sed -n 's/.*"containerimage.digest": *"\([^"]*\)".*/\1/p' "$work/metadata.json" | head -n 1)"
}

# ---------------------------------------------------------------------------------------------
check_binary() {
  [ -n "$binary" ] || die "--binary (or CW_PUSH_BINARY) is needed without Docker: the changewatch-push-service executable for $arch (\`make push-image\` builds it)"
  [ -f "$binary" ] || die "no such file: $binary"
  command -v readelf >/dev/null 2>&1 || die "readelf is needed (apt-get install binutils)"
  local machine
  machine="$(readelf -h "$binary" 2>/dev/null | sed -n 's/^ *Machine: *//p')" ||
    die "$binary is not an ELF executable"
  case "$machine" in
    *"$elf_machine"*) ;;
    *) die "$binary is built for '$machine', the stack runs $arch" ;;
  esac
  if [ "$base" = scratch ]; then
    ! readelf -l "$binary" | grep -q 'INTERP' ||
      die "$binary is dynamically linked; --base scratch needs a static binary"
  else
    # The shared libraries the base offers: glibc (2.36 in Debian 12) and libgcc_s.
    CW_MAX_GLIBC="${CW_MAX_GLIBC:-2.36}" bash "$here/check-lambda-binaries.sh" "$binary" >&2 ||
      die "$binary needs a library the base image lacks (link libxml2 statically: see the top of this script)"
  fi
  [ -f "$dashboard/index.html" ] || die "no built dashboard in $dashboard (cd dashboard && npm ci && npm run build)"
}

build_oci() {
  command -v skopeo >/dev/null 2>&1 || die "skopeo is needed (apt-get install skopeo)"
  command -v umoci >/dev/null 2>&1 || die "umoci is needed (apt-get install umoci)"
  check_binary

  # Assembled in the scratch directory, so that a failure leaves no half-made layout behind.
  local layout="$work/oci"
  if [ -n "$oci_out" ] && [ -e "$oci_out" ]; then
    die "$oci_out exists; give a new directory"
  fi

  if [ "$base" = scratch ]; then
    umoci init --layout "$layout"
    umoci new --image "$layout:base"
  else
    # A registry reference, or any skopeo transport (oci:DIR:TAG, docker-archive:FILE, ...)
    # for a base pulled earlier.
    local source="$base"
    case "$base" in
      oci:*|oci-archive:*|docker-archive:*|dir:*|docker://*) ;;
      *) source="docker://$base" ;;
    esac
    log "pulling $base for linux/$goarch"
    skopeo copy --quiet --override-os linux --override-arch "$goarch" \
      "$source" "oci:$layout:base" ||
      die "cannot pull $base for linux/$goarch (no network to its registry? --base picks another)"
  fi

  # The layer: /app/changewatch-push-service and /app/dashboard, owned by root and read-only
  # for the service's user (the Dockerfile's layout, so the two kinds of image behave alike).
  # Fixed owner, order and times make the layer depend on its contents only.
  local rootfs="$work/rootfs"
  mkdir -p "$rootfs/app"
  install -m 0755 "$binary" "$rootfs/app/changewatch-push-service"
  cp -R "$dashboard" "$rootfs/app/dashboard"
  chmod -R u=rwX,go=rX "$rootfs/app"
  local epoch
  epoch="$(git -C "$root" log -1 --format=%ct 2>/dev/null || date +%s)"
  tar --create --file "$work/layer.tar" --directory "$rootfs" \
    --format=gnu --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" app

  umoci raw add-layer --image "$layout:base" --tag "$tag" \
    --history.created_by "infra/push-image.sh" \
    --history.comment "changewatch-push-service and the dashboard" \
    "$work/layer.tar"
  umoci config --image "$layout:$tag" \
    --os linux --architecture "$goarch" \
    --clear config.cmd --clear config.entrypoint \
    --config.entrypoint /app/changewatch-push-service \
    --config.workingdir /app \
    --config.user 10001:10001 \
    --config.exposedports 5000/tcp \
    --config.stopsignal SIGTERM \
    --config.env DASHBOARD_DIR=/app/dashboard \
    --config.env CHANGEDETECTION_HOST=0.0.0.0 \
    --config.env CHANGEDETECTION_PORT=5000 \
    --config.env LOG_LEVEL=info \
    --config.label "org.opencontainers.image.title=changewatch-push-service" \
    --config.label "org.opencontainers.image.revision=${tag}" \
    --history.created_by "infra/push-image.sh"
  umoci rm --image "$layout:base"
  umoci gc --layout "$layout"

  # What ECS will run, read back from the layout the way a registry client sees it.
  skopeo inspect "oci:$layout:$tag" >"$work/inspect.json"
  skopeo inspect --config "oci:$layout:$tag" >"$work/config.json"
  log "assembled $tag: $(grep -o '"Architecture": *"[^"]*"' "$work/inspect.json"), $(sed -n '/"Layers"/,/]/p' "$work/inspect.json" | grep -c 'sha256:') layer(s)"

  if [ -n "$oci_out" ]; then
    mkdir -p "$(dirname "$oci_out")"
    mv "$layout" "$oci_out"
    echo "oci:$oci_out:$tag"
    return
  fi
  log "pushing to $repository:$tag"
  local auth="$work/auth.json"
  ecr_password | skopeo login --authfile "$auth" --username AWS --password-stdin "$registry" >/dev/null
  skopeo copy --dest-authfile "$auth" --digestfile "$work/digest" \
    "oci:$layout:$tag" "docker://$repository:$tag"
  digest="$(cat "$work/digest")"
}

# ---------------------------------------------------------------------------------------------
deploy_image() { # $1: image reference
  log "updating stack $stack: PushServiceImage=$1"
  local keys params=()
  keys="$(aws "${aws_args[@]}" cloudformation describe-stacks --stack-name "$stack" \
    --query 'Stacks[0].Parameters[].ParameterKey' --output text)"
  for key in $keys; do
    if [ "$key" = PushServiceImage ]; then
      params+=("ParameterKey=PushServiceImage,ParameterValue=$1")
    else
      params+=("ParameterKey=$key,UsePreviousValue=true")
    fi
  done
  # The stored template still carries the SAM transform, hence AUTO_EXPAND.
  aws "${aws_args[@]}" cloudformation update-stack --stack-name "$stack" \
    --use-previous-template --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND \
    --parameters "${params[@]}" >/dev/null
  log "waiting for the update (the new task must pass its health check)"
  aws "${aws_args[@]}" cloudformation wait stack-update-complete --stack-name "$stack"
  log "running: $(stack_value "Outputs[?OutputKey=='DashboardUrl'].OutputValue")"
}

digest=""
if [ "$method" = buildx ]; then
  build_with_buildx
else
  build_oci
  [ -z "$oci_out" ] || exit 0
fi

image="$repository:$tag"
log "pushed $image${digest:+ ($digest)}"
if [ "$deploy" = 1 ]; then
  deploy_image "$image"
  log "also set PushServiceImage=$image in your samconfig.toml parameter_overrides: a later plain \`sam deploy\` passes the value saved there"
else
  log "deploy it: sam deploy --parameter-overrides PushServiceImage=$image"
  log "(or rerun with --deploy); keep samconfig.toml's PushServiceImage in step, a later plain \`sam deploy\` passes the value saved there"
fi
echo "$image"
