# shellcheck shell=bash
# The lab's OAuth2 server: Debian's glewlwyd (OAuth2 / OpenID Connect, SQLite backend), sourced by
# lab/mailstack. It runs on $OAUTH_ADDR:$OAUTH_PORT from a private config and database under
# $LAB_DIR/glewlwyd, and is provisioned through its admin API (default admin user admin/password
# from the package's init SQL; the API listens on loopback only):
#   - OIDC plugin instance `oidc` (RFC 6749 refresh/password/client-credentials grants, RFC 8628
#     device authorization, RFC 7662 introspection, RFC 7009 revocation) with short access tokens
#     ($OAUTH_TOKEN_SECONDS) so that tests see tokens expire mid-run; refresh tokens are not
#     rotated (like Google's);
#   - OIDC plugin instance `oidc-rotate`: the same, but every refresh hands out a new refresh
#     token and disables the old one (like Microsoft's), for the write-back test;
#   - scope `mail`, user `oauth1` (the Dovecot seed that accepts only OAuth2) and the confidential
#     client `mailcanary`. Dovecot's oauth2 passdb introspects tokens with that client's
#     credentials too: glewlwyd lets a client introspect only the tokens issued to it.
# Secrets: $LAB_DIR/secrets/oauth-client-secret, oauth1-password, oauth-jwt-key, and
# oauth1-refresh-token (a refresh token of oauth1 for config/lab.toml, minted when missing or
# no longer active).

OAUTH_ADDR=127.0.0.20
OAUTH_PORT=4593
OAUTH_URL="http://$OAUTH_ADDR:$OAUTH_PORT/api"
OAUTH_TOKEN_SECONDS=10
OAUTH_USERS="oauth1"

glew_secret() { # glew_secret NAME: create a random secret file once, print it
  local f="$LAB_DIR/secrets/$1"
  [ -s "$f" ] || { head -c 18 /dev/urandom | base64 | tr -d '/+=' > "$f"; chmod 600 "$f"; }
  cat "$f"
}

# Private config and database (created once from the package's init SQL).
render_glewlwyd() {
  local d="$LAB_DIR/glewlwyd"
  mkdir -p "$d"
  sed -e "s|^port=.*|port=$OAUTH_PORT|" \
      -e "s|^external_url=.*|external_url=\"http://$OAUTH_ADDR:$OAUTH_PORT\"|" \
      -e "s|^log_mode=.*|log_mode=\"console\"|" \
      -e "s|^#\{0,1\}bind_address=.*|bind_address=\"$OAUTH_ADDR\"|" \
      -e "s|^@include.*|database = { type = \"sqlite3\" path = \"$d/glewlwyd.db\" }|" \
      /etc/glewlwyd/glewlwyd.conf > "$d/glewlwyd.conf.new"
  grep -q "^bind_address=\"$OAUTH_ADDR\"" "$d/glewlwyd.conf.new" || die "glewlwyd.conf: bind_address not set"
  mv "$d/glewlwyd.conf.new" "$d/glewlwyd.conf"
  if [ ! -s "$d/glewlwyd.db" ]; then
    zcat /usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz | sqlite3 "$d/glewlwyd.db.new"
    mv "$d/glewlwyd.db.new" "$d/glewlwyd.db"
    rm -f "$d/provision.sum"
  fi
  chmod 700 "$d"
}

start_glewlwyd() { # inside the lab namespace; glewlwyd stays in the foreground, so we keep its pid
  glewlwyd -c "$LAB_DIR/glewlwyd/glewlwyd.conf" </dev/null >>"$LAB_DIR/log/glewlwyd.log" 2>&1 &
  echo $! > "$LAB_DIR/run/glewlwyd.pid"
}

# glew_api METHOD PATH [JSON]: one admin API call with the admin session cookie; prints the HTTP code.
glew_api() {
  local args=(-s -o /dev/null -w '%{http_code}' -b "$LAB_DIR/glewlwyd/admin.cookie" -X "$1")
  [ $# -ge 3 ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
  curl "${args[@]}" "$OAUTH_URL$2"
}

# glew_upsert COLLECTION NAME JSON: PUT when it exists, else POST (idempotent provisioning).
glew_upsert() {
  local code
  if [ "$(glew_api GET "/$1/$2")" = 200 ]; then
    code=$(glew_api PUT "/$1/$2" "$3")
  else
    code=$(glew_api POST "/$1/" "$3")
  fi
  [ "$code" = 200 ] || die "glewlwyd admin API: $1 $2 answered $code; see $LAB_DIR/log/glewlwyd.log"
}

glew_plugin_json() { # glew_plugin_json NAME ONE_USE
  cat <<EOF
{"module":"oidc","name":"$1","display_name":"mailcanary lab ($1)","enabled":true,"parameters":{
 "iss":"$OAUTH_URL/$1","jwt-type":"sha","jwt-key-size":"256","key":"$(glew_secret oauth-jwt-key)",
 "access-token-duration":$OAUTH_TOKEN_SECONDS,"refresh-token-duration":1209600,"code-duration":600,
 "refresh-token-rolling":true,"refresh-token-one-use":"$2","allow-non-oidc":true,
 "auth-type-code-enabled":true,"auth-type-token-enabled":false,"auth-type-password-enabled":true,
 "auth-type-client-enabled":true,"auth-type-refresh-enabled":true,"auth-type-device-enabled":true,
 "device-authorization-expiration":600,"device-authorization-interval":1,
 "introspection-revocation-allowed":true,"introspection-revocation-allow-target-client":true,
 "introspection-revocation-auth-scope":[]}}
EOF
}

glew_client_json() { # glew_client_json ID SECRET
  cat <<EOF
{"client_id":"$1","client_name":"$1","client_secret":"$2","confidential":true,"enabled":true,
 "token_endpoint_auth_method":["client_secret_basic","client_secret_post"],
 "authorization_type":["password","refresh_token","client_credentials","device_authorization","delete_token"],
 "scope":["mail"],"redirect_uri":[]}
EOF
}

# Provisions what the lab needs, when it changed (or the database is new): re-applying a plugin
# instance reloads its endpoints, which a test asking for a token at that moment would see.
provision_glewlwyd() {
  local sum stamp="$LAB_DIR/glewlwyd/provision.sum"
  sum=$({ glew_plugin_json oidc never; glew_plugin_json oidc-rotate always
          glew_client_json mailcanary "$(glew_secret oauth-client-secret)"
          echo "$OAUTH_USERS"; cat "$LAB_DIR/secrets/"*-password; } | md5sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$sum" ]; then
    apply_glewlwyd
    printf '%s' "$sum" > "$stamp"
  fi
  mint_lab_refresh_token
}

apply_glewlwyd() {
  local code u
  code=$(curl -s -o /dev/null -w '%{http_code}' -c "$LAB_DIR/glewlwyd/admin.cookie" \
    -H 'Content-Type: application/json' --data-binary '{"username":"admin","password":"password"}' "$OAUTH_URL/auth/")
  [ "$code" = 200 ] || die "glewlwyd admin login answered $code; see $LAB_DIR/log/glewlwyd.log"
  glew_upsert scope mail '{"name":"mail","display_name":"Mail","description":"IMAP and SMTP of the lab seeds","password_required":false,"scheme":{}}'
  for u in $OAUTH_USERS; do
    glew_upsert user "$u" "{\"username\":\"$u\",\"name\":\"$u\",\"email\":\"$u@seed.test\",\"password\":\"$(glew_secret "$u-password")\",\"scope\":[\"mail\",\"openid\"],\"enabled\":true}"
  done
  glew_upsert mod/plugin oidc "$(glew_plugin_json oidc never)"
  glew_upsert mod/plugin oidc-rotate "$(glew_plugin_json oidc-rotate always)"
  glew_upsert client mailcanary "$(glew_client_json mailcanary "$(glew_secret oauth-client-secret)")"
  rm -f "$LAB_DIR/glewlwyd/admin.cookie"
}

# config/lab.toml's refresh token of oauth1: kept while glewlwyd says it is active, else minted
# again with the password grant (the lab's stand-in for a person running `oauth login`).
mint_lab_refresh_token() {
  local f="$LAB_DIR/secrets/oauth1-refresh-token" secret active="" body rt
  secret=$(glew_secret oauth-client-secret)
  if [ -s "$f" ]; then
    active=$(curl -s -u "mailcanary:$secret" --data-urlencode "token=$(cat "$f")" \
      -d token_type_hint=refresh_token "$OAUTH_URL/oidc/introspect/" | grep -o '"active":true' || true)
  fi
  [ -n "$active" ] && return 0
  body=$(curl -s -u "mailcanary:$secret" -d grant_type=password -d username=oauth1 \
    --data-urlencode "password=$(glew_secret oauth1-password)" -d scope=mail "$OAUTH_URL/oidc/token/")
  rt=$(printf '%s' "$body" | sed -n 's/.*"refresh_token":"\([^"]*\)".*/\1/p')
  [ -n "$rt" ] || die "glewlwyd gave no refresh token for oauth1; see $LAB_DIR/log/glewlwyd.log"
  (umask 077; printf '%s' "$rt" > "$f.new")
  mv "$f.new" "$f"
}

# Dovecot's oauth2 passdb settings (RFC 7662 introspection with the `mailcanary` client's secret).
render_dovecot_oauth2() {
  local f="$LAB_DIR/dovecot/oauth2.conf.ext"
  {
    echo "# generated by lab/mailstack: Dovecot validates OAuth2 tokens by glewlwyd's introspection endpoint"
    echo "introspection_mode = post"
    echo "introspection_url = http://mailcanary:$(glew_secret oauth-client-secret)@$OAUTH_ADDR:$OAUTH_PORT/api/oidc/introspect"
    echo "username_attribute = username"
    echo "active_attribute = active"
    echo "active_value = true"
    echo "timeout_msecs = 5000"
  } > "$f.new"
  chmod 640 "$f.new"; chgrp dovecot "$f.new"
  mv "$f.new" "$f"
}
