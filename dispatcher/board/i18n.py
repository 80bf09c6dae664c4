"""The board's words: Chinese by default, English with ``?lang=en`` (kept in a cookie)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

LANG_COOKIE = "jy_lang"
LANGS = ("zh", "en")
_ROLLCALL_HINT = ("县值班室和各乡镇值班室在班人员须在规定时间内应答（电话按1、回复短信或点击链接）；未按时应答的，"
                  "告知该值班室在班的值班领导。定时点名按 checks.yaml 自动进行。")

_EN: dict[str, str] = {
    "叫应引擎异常，呼叫可能停滞": "Engine trouble: call-outs may be stalled",
    "叫应值班看板": "Acknowledgement board", "登录": "Sign in", "退出": "Sign out", "用户名": "User name",
    "密码": "Password", "当前预警": "Active warnings", "暂无生效预警": "No active warnings",
    "演练": "DRILL", "已确认": "Acknowledged", "已通知": "Notified", "待发送": "Pending", "未叫醒": "Unreached",
    "预警已过期": "Warning expired",
    "已取消": "Cancelled", "合计": "Total", "发布": "Issued", "前": "ago", "区域": "Areas",
    "责任人": "Official", "岗位": "Role", "单位": "Unit", "状态": "State", "各渠道尝试": "Attempts",
    "用时": "Time to ack", "确认方式": "How", "当前步骤": "Step", "下次升级": "Next escalation",
    "操作": "Actions", "全部": "All", "超时未确认": "Overdue", "乡镇": "Town", "筛选": "Filter",
    "代为确认": "Acknowledge on behalf", "说明（必填）": "Note (required)", "立即重呼": "Re-call now",
    "取消预警": "Cancel warning", "确认取消整个预警事件？": "Cancel the whole warning event?",
    "我确认取消": "I confirm the cancellation", "导出": "Export", "打印归档": "Printable file",
    "事件记录": "Event record", "统计": "Statistics", "确认率": "Acknowledgement rate",
    "分钟内": "min", "按乡镇": "By town", "按岗位": "By role", "确认用时分布": "Time to acknowledge",
    "时间": "Time", "操作人": "Actor", "事件": "Event", "详情": "Details", "返回总览": "Back to overview",
    "实时连接": "Live", "连接中断，正在重连…": "Connection lost, reconnecting…", "无": "none",
    "账户已锁定，请15分钟后再试或联系管理员。": "The account is locked; try again in 15 minutes or ask an admin.",
    "用户名或密码错误（连续5次错误将锁定15分钟）。": "Wrong user name or password (5 failures lock it for 15 min).",
    "请求无效（缺少或错误的校验码），请刷新页面后重试。":
        "Invalid request (missing or wrong CSRF token); reload and retry.",
    "权限不足": "Not allowed", "已代为确认": "Acknowledged on behalf", "已重呼": "Re-called",
    "预警已取消": "Warning cancelled", "该叫应已关闭，未作更改。": "This call-out is closed; nothing changed.",
    "请填写说明。": "A note is required.", "已过期": "overdue", "秒": "s", "分": "min",
    "叫应进度": "Progress", "人": "", "总览": "Overview", "值班员": "duty officer", "下一步": "next",
    "序号": "#", "预警编号": "Warning", "导出 CSV": "CSV", "导出 JSON": "JSON", "一事一档": "Event file",
    "权限不足：此操作需要{needed}或更高权限（{name}：{role}）":
        "Not allowed: this needs the {needed} role or higher ({name}: {role})",
    "查看员": "viewer", "管理员": "admin", "请先登录。": "Please sign in first.",
    "未找到：{detail}": "Not found: {detail}",
    "请求未能完成（{status}）：{detail}": "The request could not be completed ({status}): {detail}",
    # punctuation: Chinese full-width, English half-width
    "：": ": ", "、": ", ", "；": "; ", "　　": "    ",
    # channels, attempt states, ways of acknowledging, the broadcast
    "短信": "SMS", "语音电话": "Voice call", "即时通讯": "IM", "电子邮件": "E-mail",
    "排队": "queued", "发送中": "sending", "已发出": "sent", "已送达": "delivered", "失败": "failed",
    "已撤销": "withdrawn",
    "短信回复": "SMS reply", "电话按键": "keypress", "链接确认": "confirm link", "人工代确认": "manual (on behalf)",
    "农村应急广播": "Rural emergency broadcast", "重复": "repeat",
    # the record's event kinds
    "收到预警": "Warning received", "匹配预案": "Plans matched", "启动叫应": "Call-outs started",
    "预警更新": "Warning updated", "预警解除/取消": "Warning cancelled", "发送记录": "Messages handed over",
    "执行升级步骤": "Escalation steps run", "运营商回执": "Provider receipt",
    "提前执行下一步": "Next step brought forward", "改拨下一号码": "Next number called",
    "收到短信": "SMS received", "确认未生效": "Acknowledgement ignored",
    "应急广播下单": "Broadcast ordered", "应急广播已下发": "Broadcast handed over",
    "应急广播下发失败": "Broadcast hand-over failed", "应急广播回执": "Broadcast receipt",
    "叫应随预警过期关闭": "Call-outs closed: the warning expired",
    "预警处理失败（稍后重试）": "The engine could not apply the warning (trying again)",
    "升级步骤执行失败（稍后重试）": "The engine could not run a step (trying again)",
    "重复发送告警": "Sent although another worker held it (possible double)",
    # agency keys (admins)
    "接入密钥": "Agency keys", "密钥": "Key", "部门": "Agency", "可发布的灾种": "Hazards it may post",
    "发布者标识": "Sender ids", "创建时间": "Created", "最近使用": "Last used", "已吊销": "revoked", "有效": "active",
    "吊销": "Revoke", "我确认吊销": "I confirm the revocation", "新建密钥": "New key", "创建": "Create",
    "吊销后该部门将无法再推送预警，确定？": "After revocation this agency can no longer post warnings. Revoke?",
    "发布者标识（逗号分隔，默认同部门）": "Sender ids (comma-separated; default: the agency)",
    "可发布的灾种（不选 = 全部）": "Hazards it may post (none ticked = all)",
    "气象、水利、自然资源等发布部门用接入密钥向本系统推送预警。密钥只在创建时显示一次。":
        "Issuing departments (weather, water, natural resources) post warnings with an agency key. "
        "A key is shown once, when it is created.",
    "已为 {agency} 创建密钥 {id}。请现在复制保存，离开本页后不再显示：":
        "Key {id} created for {agency}. Copy it now: it is not shown again once you leave this page:",
    "密钥已吊销": "Key revoked", "请填写部门标识（如 qingxi-qx）。": "Enter the agency (e.g. qingxi-qx).",
    "吊销前请勾选确认。": "Tick the confirmation before revoking.", "没有可吊销的密钥 {key}。": "No active key {key}.",
    "生成时间": "Generated", "签名": "Signature", "未确认": "Not acknowledged", "已结束": "ended",
    # the printed record's head (一事一档), to check a paper copy against the database
    "档案校验": "Record check", "事件数": "events", "末条事件校验码": "last event's code", "密钥编号": "key",
    "无（启用密钥前写入）": "none (written before keying)", "档案登记号": "ledger entry",
    ("核对方法：运行 jiaoying record {id} --verify，须校验通过，"
     "且第 {n} 条事件的校验码与上面一致，即本页打印后记录未被改动。"):
        "To check: run jiaoying record {id} --verify; it must pass, and event {n}'s code must be the one above: "
        "then the record was not altered after this page was printed.",
    # the record in words and the printed 一事一档 as a document (services/record_words.py words its sentences)
    "名单（{n}）": "List ({n})", "下载 PDF": "PDF", "预警叫应一事一档": "Warning call-out file",
    "时区": "time zone", "一、预警信息": "1. The warning", "叫应方案": "Call-out plans", "值班": "On duty",
    "二、叫应结果与时限": "2. Results against the time bars", "时限": "Time bars", "达标": "Met",
    "应叫应人数": "Called", "达标率": "Share", "三、逐人叫应情况": "3. Official by official",
    "叫": "Called", "应": "Answered",
    ("叫：每条发出的消息（时间、渠道、对象、结果）；应：确认的时间、方式和确认人；"
     "时限：3 分钟内叫到、5 分钟内确认、30 分钟内确认。"):
        "Called: every message sent (time, channel, to whom, outcome); answered: when, how and by whom it was "
        "acknowledged; time bars: reached within 3 min, acknowledged within 5 min, within 30 min.",
    "四、未叫醒名单及跟进": "4. Unreached and the follow-up", "列入未叫醒": "Listed unreached",
    "已通报": "List sent to",
    "跟进": "Follow-up", "无未叫醒人员。": "Nobody was left unreached.",
    "五、农村应急广播回执": "5. Rural broadcast receipts", "下单": "Ordered", "村": "Village", "回执": "Receipt",
    "本预警未下单应急广播。": "No broadcast was ordered for this warning.", "六、事件记录": "6. The record",
    "名单见第三部分": "the names are in part 3", "值班员（签名）": "Duty officer (signature)",
    "值班领导（签名）": "Duty leader (signature)", "日期": "Date",
    # the period assessment (考核): /board/report, jiaoying report and its .xlsx/CSV (services/assessment.py)
    "叫应考核": "Call-out assessment", "预警数": "Warnings", "叫应次数": "Call-outs",
    "{m}分钟内确认": "Ack ≤{m} min", "{m}分钟确认率": "Ack rate ≤{m} min", "他人代确认": "Ack by others",
    "确认用时中位数": "Median time to ack", "确认用时中位数（分钟）": "Median time to ack (min)",
    "已不在名册": "no longer on the roster", "姓名": "Name", "备注": "Note", "按月份": "By month", "月份": "Month",
    "未叫醒最多的人员": "Most often unreached", "未叫醒最多": "Most unreached", "按人员": "By person",
    "{start} 至 {end}": "{start} to {end}", "类别": "Kind", "分组": "Table", "名称": "Name",
    "真实预警": "Real warnings", "汇总": "Summary", "县": "County", "统计区间": "Period", "说明": "Notes",
    "县级": "County level", "未设岗位": "No role", "已写入 {file}": "Wrote {file}",
    "本期无叫应记录": "No call-outs in this period", "本期无演练": "No drills in this period",
    "起始日期": "From", "结束日期": "To", "查询": "Show", "导出 Excel": "Excel (.xlsx)",
    "真实预警与演练分开统计；已取消的叫应不计；确认用时自叫应开始计。":
        "Real warnings and drills are counted apart; cancelled call-outs are left out; the time to acknowledge "
        "runs from the start of the call-out.",
    ("只统计所选期间内开始的叫应；真实预警与演练分开统计。已取消的叫应不计；确认用时自叫应开始计，含他人代为确认；"
     "未叫醒指升级完毕仍无人确认。乡镇、岗位按人员当前所在名册（已不在名册的人员按最后登记）。"):
        "Only call-outs started in the period count; real warnings and drills are counted apart. Cancelled "
        "call-outs are left out; the time to acknowledge runs from the start of the call-out and includes "
        "acknowledgements by others on the official's behalf; unreached means the escalation ran out with nobody "
        "answering. Towns and roles are the officials' as on the roster now (as last recorded for those no "
        "longer on it).",
}


# -- the duty officer's next move (issue #12): 未叫醒 first with who was told and whom to phone, the
#    door-to-door follow-up, who was called and who answered; Chinese that reads as Chinese -----------
_EN.update({
    "发布于": "issued", "生效中": "active", "已更新": "updated", "已通知": "Notified", "（": " (", "）": ")",
    "本人": "the official", "AB岗": "deputy", "上级": "superior", "值班领导": "duty leader", "值班长": "duty chief",
    "乡镇值班室": "town duty room", "其他人员": "someone else", "值班人员": "duty officers",
    "手机": "mobile", "备用手机": "backup mobile", "办公电话": "office phone", "卫星电话": "satellite phone",
    "值班电话": "duty phone",
    "尚未通知他人": "nobody else told yet", "现在请拨打": "Phone now", "上门/现场核实": "Door-to-door check",
    "安排上门/现场核实": "Send someone to check", "谁去（姓名、职务）": "Who goes (name, post)",
    "说明（选填）": "Note (optional)", "安排": "Send", "记录核实结果": "Record what they found", "记录": "Record",
    "核实结果": "What they found", "已安排": "Sent:", "尚未安排": "nobody sent yet",
    "已安排上门核实": "Someone is on the way", "已记录核实结果": "What they found is on the record",
    "已当面告知本人": "reached and told in person", "本人不在，已告知家属或村组干部":
        "not at home; family or village cadres told", "未找到本人，继续寻找": "not found yet; still looking",
    "开启未叫醒提醒": "Alert me when someone is unreached",
    "未叫醒提醒已开启（点击关闭）": "Unreached alerts on (click to turn off)",
    "请安排上门/现场核实": "send someone to check door to door",
    "{m}分钟内": "within {m} min", "播发回执": "Playback receipt", "已下发": "handed over", "下发失败": "failed",
    "正在播发": "playing", "播发完成": "completed", "未回执": "no receipt yet",
    "安排上门核实": "Someone sent to check", "上门核实结果": "What the check found",
    # duty roll-calls (值班点名)
    "值班点名": "Duty roll-calls", "值班室": "Duty room", "月份": "Month", "点名次数": "Roll-calls",
    "按时应答": "Answered in time", "无人值班": "Nobody on shift", "到岗率": "Manned rate", "全期": "Whole period",
    "立即点名": "Roll-call now", "各值班室": "Duty rooms", "呼叫人数": "Called", "还没有值班点名": "No roll-calls yet",
    "本县尚未配置值班点名（checks.yaml）。": "This county has no duty roll-call configured (checks.yaml).",
    "没有这个值班点名：{id}": "No such duty roll-call: {id}", "到岗": "manned", "未到岗": "not answered",
    "点名中": "in progress", "迟到应答": "Answered late", "未应答": "No answer", "等待应答": "Waiting",
    "应答": "Answer", "应答时间": "Answered at", "姓名": "Name",
    "短信": "SMS", "电话按键": "Keypress", "链接": "Link", "代确认": "On their behalf",
    "点名中，本页每15秒刷新": "In progress; this page refreshes every 15 s",
    "引擎正在发起呼叫…": "The engine is placing the calls…",
    # 六问 spot-checks (六问抽查)
    "答全率": "Answered in full", "抽查人次": "Checked", "全部作答": "Every question answered", "全县": "County",
    "六问抽查": "Spot-checks", "抽查": "Spot-check", "开始抽查": "Start a spot-check", "抽取人数": "Sample size",
    "随机种子": "Seed", "关联预警": "During warning",
    "不关联（预警期外的例行抽查）": "None (a routine check between warnings)",
    "默认抽{n}人": "default {n} people", "留空按 checks.yaml 的默认人数": "empty: the default of checks.yaml",
    ("留空则随机生成；同一种子、同一名册、同样的近期已抽人员抽出同样的人，可复核"):
        "empty: drawn at random; the same seed, roster and people checked lately draw the same people, so it can "
        "be audited",
    ("从 checks.yaml 所列岗位的基层责任人中按乡镇分散随机抽取，逐一电话、短信提问，每问按1（是）"
     "或2（否）作答，短信可一次回复全部答案（如“1 1 2 1 1 1”）。答“否”或逾期未答全的列入跟进名单。"
     "近期已抽查的人员不再抽取；所用随机种子随记录保存，可复核。"):
        "Grassroots responsible people in the roles of checks.yaml are drawn at random, spread over the towns, and "
        "called and texted the questions; each is answered 1 (yes) or 2 (no), by SMS all in one reply (e.g. "
        "\"1 1 2 1 1 1\"). Anyone answering no, or not answering every question in time, is listed for follow-up. "
        "People checked lately are not drawn again; the seed is kept with the record, so the draw can be audited.",
    "还没有六问抽查": "No spot-checks yet", "结果": "Result", "可抽取人数不足": "Fewer people than asked",
    "可抽取人数不足：要求抽取{size}人，只有{available}人可抽。":
        "Not enough people to draw: {size} asked, only {available} available.",
    "要求抽取": "Asked", "实际抽取": "Drawn", "可抽取": "Available",
    "近{days}天已抽查、未再抽取": "Left out: checked in the last {days} days",
    ("复核：同一种子、同一名册、同样的近期已抽人员，抽出的是同样的人（jiaoying spotcheck audit {id}）。"):
        "Audit: the same seed, roster and people checked lately draw the same people (jiaoying spotcheck audit {id}).",
    "作答中，本页每15秒刷新": "Answering; this page refreshes every 15 s", "需跟进": "Follow up",
    "需跟进事项": "To follow up", "暂无需跟进人员": "Nobody to follow up", "第{n}问": "Q{n}", "各问作答": "Answers",
    "问题": "Question", "是": "yes", "否": "no", "未答": "no answer", "抽查人员": "People drawn",
    "答全时间": "Answered in full at", "回复未能识别，已再次询问": "a reply was not an answer: asked again",
    "全部为是": "all yes", "有“否”": "said no", "未答全": "not all answered", "作答中": "answering",
    "抽取人数须为1至{max}的整数，而不是“{value}”。":
        "The sample size must be a whole number from 1 to {max}, not \"{value}\".",
    "随机种子须为不小于0的整数（留空则随机生成），而不是“{value}”。":
        "The seed must be a whole number from 0 (empty: drawn at random), not \"{value}\".",
    "没有这个抽查：{id}": "No such spot-check: {id}", "没有这个预警：{id}": "No such warning: {id}",
    "本县尚未配置六问抽查（checks.yaml 的 spotchecks）。":
        "This county has no spot-check configured (checks.yaml, spotchecks).",
    "无人可抽：担任抽查岗位的{n}人均在近{days}天内抽查过，未再抽取。":
        "Nobody to draw: all {n} people in the spot-check's roles were checked in the last {days} days.",
    "无人可抽：没有人担任该抽查的岗位（或缺少可用的电话、短信号码）。":
        "Nobody to draw: no one holds the spot-check's roles (or has a number for its channels).",
    "尚未加载本县的站点文件（jiaoying load）。": "No site files are loaded yet (jiaoying load).",
    _ROLLCALL_HINT: "Everyone on shift in the county and town duty rooms must answer in time (press 1, reply by "
                    "SMS or use the link); the room's duty leader on shift is told of anyone who does not. "
                    "Scheduled roll-calls follow checks.yaml.",
})

# Drills (演练): board/drills.py, templates/board/drills.html and drill.html.
_EN.update({
    "演练记录": "Drills", "还没有演练": "No drills yet", "安排演练": "Schedule a drill",
    "立即开始公开演练": "Start an announced drill now", "双盲演练": "Blind drill", "公开演练": "Announced drill",
    "接入演练预警": "Drill posted by an agency", "待开始": "scheduled", "进行中": "running", "已结束": "ended",
    "错过未执行": "missed (not run)", "全部叫应已结束": "every call-out settled", "管理员结束演练": "ended by an admin",
    "演练时限已到": "its time ran out", "演练预警已取消": "its warning was cancelled", "结束演练": "End the drill",
    "撤销演练": "Call off the drill", "类型": "Kind", "叫应人数": "Called", "通知率": "Reached",
    "分钟内确认": " min: acknowledged", "未确认": "Not acknowledged", "断开": "Taken out", "时间窗": "Window",
    "灾种": "Hazard", "等级": "Level", "区域代码": "Area codes", "发布单位（sender）": "Sender",
    "预警标题": "Headline", "防御指引": "Instruction", "断开（演练期间不使用）": "Take out for the drill",
    "服务商": "Provider", "下发农村应急广播": "Order the rural broadcast", "时限（分钟）": "Length (min)",
    "何时": "When", "或时间窗": "or a window", "备注": "Note", "开始": "Started", "结束": "Ended",
    "安排人": "Arranged by", "时限": "Length", "分钟": "min", "应急广播": "Rural broadcast", "是": "yes", "否": "no",
    "叫应看板": "Board", "叫应时效": "Reach and acknowledgement", "人数": "People", "中位数": "Median",
    "已通知未确认": "reached, not acknowledged", "未通知到": "not reached", "全部已确认": "Everyone acknowledged",
    "接替情况": "What took over", "计划首步": "Planned first step", "实际通道": "Reached by", "步骤": "Step",
    "晚于计划": "Later than planned", "通道失败": "Channel failures", "通道": "Channel", "错误": "Error",
    "演练断开": "drill outage", "无通道失败": "No channel failures", "逐人时效": "Each official",
    "首次通知": "First reached", "确认用时": "Time to ack", "历次演练对比": "Beside the previous drills",
    "演练尚未开始": "The drill has not started yet",
    "未能安排演练：{problem}": "The drill could not be arranged: {problem}",
    "没有这个演练：{id}": "No such drill: {id}",
    "演练经所有真实通道发出，每条短信、语音、即时通讯消息均以【演练】开头；不计入真实预警统计。双盲演练在结束前只有管理员可见其为演练。":
        "Drills go through every real channel and every SMS, call and IM message starts with 【演练】 (drill); they "
        "never count in real statistics. Until a blind drill ends, only admins see that it is a drill.",
    "双盲演练：只对管理员可见，值班人员在演练结束前看到的是真实预警；可给定时间，或给定时间窗由系统随机选定时刻（不显示）。公开演练：所有人可见。立即开始的演练为公开演练。":
        "Blind drill: visible as a drill to admins only; duty officers see a real warning until it ends. Give a "
        "time, or a window in which the engine draws the moment (never shown). Announced drill: visible to "
        "everyone. A drill started now is announced.",
    "双盲演练：结束前，值班员和查看员在看板上看到的是真实预警；所有发给责任人的消息仍带【演练】。":
        "Blind drill: until it ends, officers and viewers see a real warning on the board; every message to the "
        "officials still says 【演练】 (drill).",
    "断开的通道或服务商不发送；下表列出实际通知到每个人的通道和服务商，以及比计划的第一步晚了多久。":
        "Nothing goes on a channel or provider taken out; below, what actually reached each person, by which "
        "provider, and how much later than the planned first step.",
    "标准：红色预警3分钟内叫到全部责任人，5分钟内全部叫醒（确认）。用时自演练开始计，分:秒。":
        "The bars: everyone reached within 3 minutes of a red warning, everyone woken (acknowledged) within 5. "
        "Times from the drill's start, min:s.",
    "未叫应": "Not called", "原因": "Why", "正被演练 {id} 叫应": "being called by drill {id}",
    "正被其他叫应占用": "already being called by another call-out",
    "本演练的方案包含这些人员，但演练开始时他们正被同一灾种、相同区域的其他叫应占用，未再次叫应，不计入叫应人数。":
        "The drill's plans name these people, but when it started they were already being called by another "
        "call-out of the same hazard and areas: they were not called again, and are not counted as called.",
})


def lang_of(request: Request) -> str:
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE) or "zh"
    return asked if asked in LANGS else "zh"


def translator(lang: str) -> Callable[[str], str]:
    """``t("中文")`` → the English text when ``lang`` is en (Chinese if no translation)."""
    if lang == "en":
        return lambda text: _EN.get(text, text) or text
    return lambda text: text
