# Runs before any user script: the receiving spam filter (rspamd) marks spam with "X-Spam: Yes".
require ["fileinto"];
if header :is "X-Spam" "Yes" {
  fileinto "Junk";
  stop;
}
