-- The lab's content rule: a phrase our spam route carries scores like real spam content would,
-- so that route lands in Junk with SPF, DKIM and DMARC passing (unlike GTUBE, which makes
-- rspamd skip every other check).
config['regexp']['LAB_SPAM_PHRASE'] = {
  re = '/mailcanary-lab-spam-phrase/i{mime}',
  score = 9.0,
  description = 'mailcanary lab: content the lab treats as spam',
  group = 'content',
}
