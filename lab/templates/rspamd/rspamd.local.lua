-- The lab's content rule: a phrase our spam route carries scores like real spam content would,
-- so that route lands in Junk with SPF, DKIM and DMARC passing (unlike GTUBE, which makes
-- rspamd skip every other check).
config['regexp']['LAB_SPAM_PHRASE'] = {
  re = '/mailcanary-lab-spam-phrase/i{mime}',
  score = 9.0,
  description = 'mailcanary lab: content the lab treats as spam',
  group = 'content',
}

-- The fault switch's spam-content (`lab/mailstack fault spam-content on`): while the file
-- @LAB_DIR@/faults/spam-content.on exists, mail arriving from the fault route's address (127.0.0.9)
-- scores as spam content and is filed in Junk. The file is looked at for every such message, so
-- switching takes effect with the next message, without a reload; no other sender is affected.
local lab_fault_file = '@LAB_DIR@/faults/spam-content.on'
rspamd_config:register_symbol({
  name = 'LAB_FAULT_SPAM_CONTENT',
  score = 9.0,
  group = 'content',
  description = 'mailcanary lab: fault spam-content is on for the fault route',
  callback = function(task)
    local ip = task:get_from_ip()
    if not ip or not ip:is_valid() or ip:to_string() ~= '127.0.0.9' then
      return false
    end
    local f = io.open(lab_fault_file, 'r')
    if f then
      f:close()
      return true
    end
    return false
  end,
})

-- The inbound loop's refusal: a phrase that sender.test's MX (and any receiving MX of the lab)
-- refuses at rspamd's reject score, while the provider side's submission scan (authenticated)
-- lets it through, so the refusal is the receiving MX's own.
local rspamd_regexp = require 'rspamd_regexp'
local lab_reject_re = rspamd_regexp.create_cached('/mailcanary-lab-reject-phrase/i')
rspamd_config:register_symbol({
  name = 'LAB_REJECT_PHRASE',
  score = 20.0,
  group = 'content',
  description = 'mailcanary lab: content a receiving MX of the lab refuses',
  callback = function(task)
    if task:get_user() then
      return false
    end
    return lab_reject_re:match(task:get_content()) and true or false
  end,
})
