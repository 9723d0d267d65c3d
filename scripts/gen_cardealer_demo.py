#!/usr/bin/env python3
"""Generate the car-dealer blueprint's demo records (deterministic, stdlib only).

Writes, under blueprints/cardealer/demo/:
  leads.jsonl          six months of leads (2026-05-26 .. 2026-11-25, +08:00)
  defeats.jsonl        a lost-customer capture for every lead whose status is "defeated"
  followups.jsonl      follow-up records of the leads
  market_events.jsonl  a few market events (price cut, new stock, promotion, competitor complaint)
  tasks.jsonl          the open tasks the rules would have left in the last days (plans, cadence, overdue)

Everything the blueprint's rules would have written is written too (grades and pools of defeats,
the leads' first/last/next follow-up times, wake-ups of dormant customers), because imported
history fires no rules. The files are dated as of NOW below (blueprint.json says so in
demo.as_of); the loader moves every date by whole days so that NOW becomes the day it loads.

Records in other files point at leads by import key ("lead-000017"), so a loader must
import leads before the records that reference them.

The same --count and --seed always give byte-identical files:
    python scripts/gen_cardealer_demo.py [--count 120] [--seed 2022]
"""
import argparse
import bisect
import json
import random
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BLUEPRINT = REPO / "blueprints" / "cardealer"

TZ = timezone(timedelta(hours=8))  # Asia/Shanghai has no DST
FIRST_DAY = date(2026, 5, 26)
LAST_DAY = date(2026, 11, 25)
NOW = datetime(2026, 11, 25, 18, 0, tzinfo=TZ)  # the demo's "today"

# Channel mix: live streams bring the most leads, then the platforms (seed 000).
CHANNELS = [
    ("live_stream", 30), ("dongchedi", 14), ("douyin_dm", 12), ("autohome", 10),
    ("showroom", 9), ("referral", 7), ("wechat", 6), ("website", 5), ("auto_show", 4), ("other", 3),
]
# A/B/C share per channel: live streams 30 % A, platforms about 20 % (seed 000).
QUALITY_MIX = {
    "live_stream": (30, 45, 25), "dongchedi": (20, 45, 35), "douyin_dm": (18, 42, 40),
    "autohome": (22, 45, 33), "showroom": (40, 45, 15), "referral": (45, 40, 15),
    "wechat": (25, 45, 30), "website": (20, 45, 35), "auto_show": (30, 45, 25), "other": (15, 40, 45),
}
WIN_RATE = {"a": 0.30, "b": 0.10, "c": 0.02}
LOSS_RATE = {"a": 0.18, "b": 0.32, "c": 0.42}
# Platform channels handled by whoever has the platform's name among their skills.
PLATFORM_SKILL = {"dongchedi": "懂车帝", "autohome": "汽车之家", "douyin_dm": "抖音私信"}
BODY_SKILL = {"suv": "SUV", "sedan": "轿车", "mpv": "MPV", "nev": "新能源"}
OPEN_CAP = 15  # a salesperson with this many open leads gets no new round-robin leads
# Follow-up cadence per customer class (seed 003), as the cadence_* rules fire it.
CADENCE = {
    "potential": (timedelta(days=7), "潜在客户周度触达：短信或朋友圈 · {name}", "cadence_potential"),
    "intent": (timedelta(days=3.5), "意向客户跟进：电话或微信 · {name}", "cadence_intent"),
    "key": (timedelta(days=2), "重点客户跟进：邀约到店或电话 · {name}", "cadence_key"),
    "dormant": (timedelta(days=90), "休眠客户季度唤醒 · {name}", "cadence_dormant"),
}

BUDGETS = [("budget_under_5", 15), ("budget_5_8", 30), ("budget_8_12", 35), ("budget_over_12", 20)]
BUDGET_TEXT = {"budget_under_5": "5万内", "budget_5_8": "5-8万", "budget_8_12": "8-12万", "budget_over_12": "12万以上"}
BUDGET_PRICE = {"budget_under_5": (25000, 50000), "budget_5_8": (50000, 80000),
                "budget_8_12": (80000, 120000), "budget_over_12": (120000, 260000)}
BODIES = [("suv", 45), ("sedan", 30), ("mpv", 10), ("nev", 15)]
BODY_TEXT = {"suv": "SUV", "sedan": "轿车", "mpv": "MPV", "nev": "新能源车"}

# (series, variant, body type, fuel, budget bands it is sold in)
CATALOG = [
    ("哈弗H6", "1.5T 自动", "suv", "gasoline", ("budget_5_8",)),
    ("吉利博越", "1.8T 自动", "suv", "gasoline", ("budget_5_8",)),
    ("长安CS75 PLUS", "1.5T 自动", "suv", "gasoline", ("budget_5_8", "budget_8_12")),
    ("日产奇骏", "2.0L CVT", "suv", "gasoline", ("budget_5_8", "budget_8_12")),
    ("本田CR-V", "240TURBO", "suv", "gasoline", ("budget_8_12", "budget_over_12")),
    ("丰田RAV4荣放", "2.0L CVT", "suv", "gasoline", ("budget_8_12", "budget_over_12")),
    ("大众途观L", "330TSI", "suv", "gasoline", ("budget_8_12",)),
    ("宝马X1", "sDrive25Li", "suv", "gasoline", ("budget_over_12",)),
    ("奥迪Q5L", "40TFSI", "suv", "gasoline", ("budget_over_12",)),
    ("丰田普拉多", "2.7L", "suv", "gasoline", ("budget_over_12",)),
    ("江铃域虎", "2.0T 柴油", "suv", "diesel", ("budget_5_8",)),
    ("宝骏510", "1.5L 手动", "suv", "gasoline", ("budget_under_5",)),
    ("大众朗逸", "1.5L 自动", "sedan", "gasoline", ("budget_under_5", "budget_5_8")),
    ("日产轩逸", "1.6L CVT", "sedan", "gasoline", ("budget_under_5", "budget_5_8")),
    ("丰田卡罗拉", "1.2T CVT", "sedan", "gasoline", ("budget_5_8",)),
    ("别克英朗", "1.5L 自动", "sedan", "gasoline", ("budget_under_5",)),
    ("吉利帝豪", "1.5L 手动", "sedan", "gasoline", ("budget_under_5",)),
    ("本田雅阁", "260TURBO", "sedan", "gasoline", ("budget_8_12",)),
    ("丰田凯美瑞", "2.5L 双擎", "sedan", "hybrid", ("budget_8_12", "budget_over_12")),
    ("大众迈腾", "330TSI", "sedan", "gasoline", ("budget_8_12",)),
    ("宝马3系", "325Li", "sedan", "gasoline", ("budget_over_12",)),
    ("奔驰C级", "C260L", "sedan", "gasoline", ("budget_over_12",)),
    ("别克GL8", "ES陆尊 2.0T", "mpv", "gasoline", ("budget_8_12", "budget_over_12")),
    ("五菱宏光S", "1.5L 手动", "mpv", "gasoline", ("budget_under_5",)),
    ("传祺M6", "270T 自动", "mpv", "gasoline", ("budget_5_8",)),
    ("本田奥德赛", "2.0L 锐·混动", "mpv", "hybrid", ("budget_over_12",)),
    ("比亚迪秦PLUS DM-i", "55KM 领先型", "nev", "hybrid", ("budget_5_8",)),
    ("比亚迪宋PLUS DM-i", "110KM 旗舰型", "nev", "hybrid", ("budget_8_12",)),
    ("比亚迪汉EV", "506KM 尊贵型", "nev", "ev", ("budget_8_12", "budget_over_12")),
    ("广汽埃安S", "炫 580", "nev", "ev", ("budget_5_8",)),
    ("五菱宏光MINI EV", "170KM 马卡龙", "nev", "ev", ("budget_under_5",)),
    ("小鹏P7", "586G", "nev", "ev", ("budget_8_12",)),
    ("特斯拉Model 3", "标准续航后驱版", "nev", "ev", ("budget_over_12",)),
    ("理想ONE", "增程6座版", "nev", "hybrid", ("budget_over_12",)),
]
# A competitor series many lost customers end up buying, so the complaint event has owners to alert.
POPULAR_COMPETITOR = {"suv": "哈弗H6", "sedan": "大众朗逸"}

SURNAMES = ("王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文")
MALE = ["伟", "强", "磊", "军", "勇", "杰", "涛", "斌", "超", "明", "刚", "平", "辉", "鹏", "华", "飞", "鑫", "波", "宇", "浩",
        "建华", "建国", "志强", "海峰", "晓东", "俊杰", "文博", "子豪", "国庆", "立新", "振华", "宏伟", "家豪", "明轩", "志远"]
FEMALE = ["芳", "娜", "敏", "静", "丽", "艳", "娟", "霞", "婷", "雪", "琳", "颖", "倩", "洁", "玲",
          "秀英", "桂英", "晓燕", "丽娟", "雅婷", "梦瑶", "欣怡", "思雨", "佳琪", "美玲", "春梅", "海燕"]
MOBILE_PREFIXES = ["138", "139", "150", "151", "186", "187", "135", "136", "158", "159", "177", "188", "189"]

LIVE_THEMES = [("SUV", "suv"), ("新能源", "nev"), ("10万内代步车", None), ("家用MPV", "mpv"),
               ("准新车", None), ("豪华车", None)]

NOTES = [
    "本地上班族，主要通勤代步，看重油耗。",
    "家里添了二胎，想换空间大一点的车。",
    "首次购车，想看准新车，担心事故车、泡水车。",
    "外地客户，需要视频看车，车辆需可外迁。",
    "做生意用车，偶尔拉货，需要后排空间。",
    "老车想置换，希望店里能收旧车。",
    "要求提供第三方检测报告。",
    "周末才有时间看车。",
    "想办按揭，首付控制在3万以内。",
    "对比了几家车商，价格比较敏感。",
]

# Per defeat reason: weight, the customer's words, the win-back angle.
REASONS = {
    "price": (25, ["客户原话：“同款车隔壁车商便宜了六七千，你们再让点我就定。”",
                   "客户觉得我们的报价比平台上同款高，议价后仍差3000元。"],
              "同款降价、限时优惠或特价库存车时第一时间通知，低频精准触达。"),
    "vehicle_condition": (15, ["客户原话：“检测报告上说左前翼子板喷过漆，心里不踏实。”",
                               "客户担心是事故车，看了检测报告还是有顾虑。"],
                          "推荐有完整保养记录的车源，提供第三方检测报告和90天回购保障。"),
    "competitor": (12, ["客户原话：“同样的价钱那边车龄更新，配置也更高。”",
                        "客户在另一家车商看中了车龄更新的同价位车型。"],
                   "长线跟进，定期推送同车型对比评测和车主故事，确保下次购车仍在备选之列。"),
    "not_buying_now": (12, ["客户原话：“先不买了，等年底奖金发下来再说。”",
                            "客户表示家里意见不统一，暂时不买，需再考虑。"],
                       "加入定期触达池，每月推送1次同车型降价信息和新到车源。"),
    "mileage_age": (8, ["客户原话：“跑了八万多公里，再开几年就得大修了吧？”",
                        "客户嫌车龄太老，想要三年内的准新车。"],
                    "有低里程、准新车源到店时优先推荐。"),
    "finance_tradein": (7, ["客户原话：“首付要四成太高了，那边两成就能开走。”",
                            "客户觉得旧车置换价给得太低。"],
                        "推出低首付、贴息或置换补贴方案时通知客户。"),
    "config_mismatch": (5, ["客户想要带全景天窗的版本，店里现车没有。",
                            "客户要白色外观，现有车源颜色不合适。"],
                        "有同配置或指定颜色车源到店时通知客户。"),
    "sales_service": (4, ["客户原话：“你们销售回消息太慢，问个价等了一下午。”",
                          "客户反映看车时接待不够专业，感觉被催着下单。"],
                      "由销售经理在24小时内回访致歉，更换顾问对接，以修复信任为主。"),
    "family_kol": (4, ["客户原话：“我老婆看了个博主视频，说这车毛病多。”",
                       "家人更倾向买新车，不同意买二手车。"],
                   "邀请家人一起到店试驾，提供车主口碑资料。"),
    "transfer_restriction": (4, ["客户户籍在外地，这台车排放标准不能迁入当地。",
                                 "客户需要本地牌照，车辆指标问题办不了。"],
                             "推荐国六、可迁入客户所在地的车源。"),
    "brand_aftersales": (3, ["客户担心这个品牌二手车保值率低、以后维修贵。",
                             "客户顾虑当地没有该品牌的售后网点。"],
                         "介绍延保服务和合作维修网点，降低售后顾虑。"),
    "delivery_time": (2, ["车辆整备和过户要一周，客户急着用车等不了。"],
                      "有现车、可当天过户的车源时立即通知。"),
}
COMPETITOR_PLANS = [
    "全款，优惠3000元，送一年保养。",
    "首付两成，36期分期，送全车贴膜。",
    "置换补贴5000元，当天过户提车。",
    "首付3万，月供1980元，送两次保养。",
    "裸车价再降2000元，送一年交强险。",
]


def pick(rng, weighted):
    items, weights = zip(*weighted)
    return rng.choices(items, weights=weights)[0]


def at(day, hour, minute=0):
    return datetime.combine(day, time(hour, minute), TZ)


def office(t):
    """Move a time outside 9:00-21:00 to the next working hour."""
    if t.hour < 9:
        return t.replace(hour=9)
    if t.hour >= 21:
        return (t + timedelta(days=1)).replace(hour=9)
    return t


def stamp(dt):
    return dt.isoformat(timespec="seconds")


class People:
    """Salespeople from people.json and how the seed's assignment rules pick one."""

    def __init__(self, path):
        users = json.loads(path.read_text("utf-8"))["users"]
        self.sales = [u for u in users if u["role"] == "sales"]
        self.hosts = [u["username"] for u in self.sales if "直播" in u["skills"]]
        self.manager = next(u["username"] for u in users if u["role"] == "manager")
        self.admin = next(u["username"] for u in users if u["role"] == "admin")
        self.open = {u["username"]: [] for u in self.sales}  # sorted closing times of assigned leads

    def with_skill(self, skill):
        return [u["username"] for u in self.sales if skill in u["skills"]]

    def pending(self, username, when):
        closing = self.open[username]
        return len(closing) - bisect.bisect_right(closing, when)

    def least_pending(self, candidates, when):
        """The candidate with the fewest open leads, skipping anyone at the cap (or None)."""
        under_cap = [u for u in candidates if self.pending(u, when) < OPEN_CAP]
        return min(under_cap, key=lambda u: (self.pending(u, when), u)) if under_cap else None

    def assign(self, lead, host, when):
        """Source-directed, then skill match, then least-pending round robin (seed 000)."""
        if host:
            return host
        wanted = [PLATFORM_SKILL.get(lead["source_channel"])]
        if lead.get("budget") == "budget_over_12":
            wanted.append("豪华车")
        if lead.get("body_type"):
            wanted.append(BODY_SKILL[lead["body_type"]])
        if lead.get("accepts_loan"):
            wanted.append("按揭")
        for skill in filter(None, wanted):
            chosen = self.least_pending(self.with_skill(skill), when)
            if chosen:
                return chosen
        everyone = [u["username"] for u in self.sales]
        return self.least_pending(everyone, when) or min(everyone, key=lambda u: (self.pending(u, when), u))


class Generator:
    def __init__(self, count, seed):
        self.rng = random.Random(seed)
        self.extra = random.Random(seed + 1)  # for what came later, leaving the first stream as it was
        self.count = count
        self.people = People(BLUEPRINT / "people.json")
        self.phones = set()
        self.sessions = self._sessions()
        self.leads, self.defeats, self.followups = [], [], []
        self.won = []  # leads won so far, in order: referrals name one of them

    # ------------------------------------------------------------ building blocks
    def _sessions(self):
        """Evening live streams: 3 a week, 5 a week from September (seed 000)."""
        out, day, i = [], FIRST_DAY, 0
        while day <= LAST_DAY:
            days = (1, 3, 5) if day < date(2026, 9, 1) else (0, 1, 3, 4, 5)
            if day.weekday() in days:
                theme, body = LIVE_THEMES[i % len(LIVE_THEMES)]
                host = self.people.hosts[0] if body in ("suv", "mpv") else self.people.hosts[i % len(self.people.hosts)]
                if body == "nev":
                    host = self.people.hosts[-1]
                name = f"{day.month}.{day.day} 晚 8 点 {theme}专场直播"
                out.append({"name": name, "start": at(day, 20), "body": body, "host": host})
                i += 1
            day += timedelta(days=1)
        return out

    def name(self):
        rng = self.rng
        surname = rng.choice(SURNAMES[:60]) if rng.random() < 0.85 else rng.choice(SURNAMES)
        male = rng.random() < 0.68
        if rng.random() < 0.15:
            return surname + ("先生" if male else "女士")
        return surname + rng.choice(MALE if male else FEMALE)

    def phone(self):
        while True:
            number = self.rng.choice(MOBILE_PREFIXES) + f"{self.rng.randrange(10 ** 8):08d}"
            if number not in self.phones:
                self.phones.add(number)
                return number

    def wechat_id(self):
        letters = "abcdefghjkmnpqrstuvwxyz"
        head = "".join(self.rng.choice(letters) for _ in range(self.rng.randint(3, 7)))
        return f"{head}{self.rng.randrange(100, 9999)}"

    def model_for(self, budget, body):
        options = [m for m in CATALOG if m[2] == body and budget in m[4]] or [m for m in CATALOG if m[2] == body]
        series, variant, _, fuel, _ = self.rng.choice(options)
        year = self.rng.randint(2018, 2024) if budget != "budget_under_5" else self.rng.randint(2015, 2020)
        return f"{year}款 {series} {variant}", fuel

    def created_times(self):
        """Lead arrival times, growing slightly over the half year, in order."""
        span = (NOW - at(FIRST_DAY, 9)).total_seconds()
        fresh = max(1, self.count // 30)  # today's and yesterday's inflow, still untouched
        out = []
        for i in range(self.count):
            x = self.rng.random() ** 0.8  # mild growth towards autumn
            if i < fresh:
                x = 1 - self.rng.uniform(0, 40 * 3600) / span
            t = at(FIRST_DAY, 9) + timedelta(seconds=x * span)
            if not 9 <= t.hour < 22:  # office hours, except live streams (set later)
                t = t.replace(hour=self.rng.randint(9, 21))
            out.append(min(t, NOW - timedelta(minutes=30)))
        return sorted(out)

    # ------------------------------------------------------------ leads
    def build_lead(self, created, duplicate_of=None):
        rng = self.rng
        channel = pick(rng, CHANNELS)
        if duplicate_of is not None:
            channel = pick(rng, [c for c in CHANNELS if c[0] != duplicate_of["data"]["source_channel"]])
        session = None
        if channel == "live_stream":
            past = [s for s in self.sessions if s["start"] <= created] or self.sessions[:1]
            session = rng.choice(past[-4:])
            created = min(session["start"] + timedelta(minutes=rng.randint(5, 170)), NOW - timedelta(minutes=30))

        data = {}
        if duplicate_of is not None:
            data["customer_name"] = duplicate_of["data"]["customer_name"]
            data["phone"] = duplicate_of["data"]["phone"]
        else:
            data["customer_name"] = self.name()
            data["phone"] = self.phone()
        if (channel in ("wechat", "live_stream", "douyin_dm") and rng.random() < 0.6) or rng.random() < 0.2:
            data["wechat_id"] = self.wechat_id()
        data["source_channel"] = channel
        host = None
        if session:
            data["live_session"] = session["name"]
            data["live_host"] = host = session["host"]
        if channel == "referral":
            won = self.won
            if won and rng.random() < 0.8:
                ref = rng.choice(won)["data"]
                data["referrer"] = f"{ref['customer_name']} {ref['phone']}"
            else:
                data["referrer"] = self.name()

        quality = pick(rng, zip("abc", QUALITY_MIX[channel]))
        body = session["body"] if session and session["body"] and rng.random() < 0.8 else pick(rng, BODIES)
        budget = pick(rng, BUDGETS)
        model, fuel = self.model_for(budget, body)
        age = (NOW - created).total_seconds() / 86400

        status, deal_day, appointment = self.outcome(quality, channel, created, age)
        known = status != "new" or rng.random() < 0.4  # needs are filled in after the first call
        if known:
            data["budget"] = budget
            data["body_type"] = body
            if rng.random() < 0.85:
                data["fuel_type"] = fuel
            if rng.random() < 0.8:
                data["plate_requirement"] = "transferable" if rng.random() < 0.3 else "local"
            if rng.random() < 0.75:
                data["accepts_loan"] = rng.random() < 0.5
            if quality == "a" or (quality == "b" and rng.random() < 0.7) or rng.random() < 0.2:
                data["intended_model"] = model
        if status not in ("new", "no_answer") or rng.random() < 0.3:
            data["quality"] = quality
        data["status"] = status
        if status == "invited":
            data["appointment_at"] = stamp(appointment)
        if status == "won":
            data["deal_date"] = deal_day.isoformat()
        klass = self.customer_class(quality, status, age)
        if klass:
            data["customer_class"] = klass
        if status not in ("won", "defeated") and rng.random() < 0.7:
            days = {"a": (1, 10), "b": (7, 60), "c": (30, 180)}[quality]
            data["expected_purchase_date"] = (created.date() + timedelta(days=rng.randint(*days))).isoformat()
        if rng.random() < 0.35:
            data["notes"] = rng.choice(NOTES)

        owner = self.people.assign(data, host, created)
        closes = {"won": at(deal_day, 17) if deal_day else NOW,
                  "defeated": created + timedelta(days=14)}.get(status, NOW + timedelta(days=30))
        bisect.insort(self.people.open[owner], closes)
        creator = self.people.admin if channel == "website" else owner
        return {"form": "lead", "key": None, "owner": owner, "created_by": creator,
                "created_at": created, "data": data, "_model": model}

    def outcome(self, quality, channel, created, age):
        """(status, deal date, appointment time) for a lead of this age."""
        rng = self.rng
        win = WIN_RATE[quality] * (1.5 if channel in ("referral", "showroom") else 1.0)
        lose = LOSS_RATE[quality]
        roll = rng.random()
        if roll < win:
            mean, sd = {"a": (7, 2), "b": (15, 4), "c": (25, 6)}[quality]  # conversion cycle, seed 000
            cycle = max(1, round(rng.gauss(mean, sd)))
            deal = created.date() + timedelta(days=cycle)
            if deal <= NOW.date():
                return "won", deal, None
        elif roll < win + lose and age > 3:
            return "defeated", None, None
        if age < 2:
            return rng.choice(["new", "new", "no_answer"]), None, None
        if age < 4:
            status = rng.choice(["no_answer", "contacted", "contacted", "invited"])
        elif age < 30:
            status = rng.choice(["no_answer", "contacted", "invited", "invited", "invited", "visited"])
        else:
            status = rng.choice(["no_answer", "contacted", "contacted", "visited"])
        if status == "invited":
            day = created.date() + timedelta(days=rng.randint(1, 6))
            if day < NOW.date() and age < 30:  # re-booked after an earlier no-show or delay
                day = NOW.date() + timedelta(days=rng.randint(1, 6))
            appointment = at(day, rng.choice([10, 14, 15, 16]), rng.choice([0, 30]))
            if appointment < NOW - timedelta(days=2):
                return "visited", None, None
            return "invited", None, appointment
        return status, None, None

    def customer_class(self, quality, status, age):
        rng = self.rng
        if status == "new":
            return "potential" if rng.random() < 0.3 else None
        if status not in ("won", "defeated") and age > 150:
            return "dormant"
        if status == "defeated" and rng.random() < 0.3:
            return "dormant"
        base = {"a": "key", "b": "intent", "c": "potential"}[quality]
        if rng.random() < 0.15:
            base = rng.choice(["potential", "intent", "key"])
        return "key" if status == "won" else base

    # ------------------------------------------------------------ follow-ups and defeats
    def build_followups(self, lead):
        """Follow-up records between the lead's arrival and its outcome; returns them in order."""
        rng, data = self.rng, lead["data"]
        status = data["status"]
        created = lead["created_at"]
        n = {"new": 0, "no_answer": rng.randint(1, 2), "contacted": rng.randint(1, 3),
             "invited": rng.randint(2, 4), "visited": rng.randint(2, 5), "won": rng.randint(3, 6),
             "defeated": rng.randint(2, 5)}[status]
        if n == 0:
            return []
        if status == "won":
            end = at(date.fromisoformat(data["deal_date"]), 16)
        elif status == "invited":
            end = min(NOW, datetime.fromisoformat(data["appointment_at"]) - timedelta(hours=20))
        else:
            end = min(NOW, created + timedelta(days=rng.randint(5, 40)))
        end = max(end, created + timedelta(hours=2))
        first = created + timedelta(hours=rng.uniform(0.2, 20) if rng.random() < 0.8 else rng.uniform(24, 60))
        first = min(first, end - timedelta(minutes=30 * n))
        times = [first]
        for i in range(1, n):
            remaining = (end - times[-1]) / (n - i + 1)
            times.append(times[-1] + remaining * rng.uniform(0.6, 1.0))
        times = sorted(min(office(t), NOW) for t in times)
        if status == "won":
            times[-1] = end
        times = [t.replace(second=0, microsecond=0) for t in times]
        visit_at = n - 2 if status == "won" or (status == "defeated" and rng.random() < 0.55) else None
        model = data.get("intended_model") or lead["_model"]
        budget = BUDGET_TEXT.get(data.get("budget"), "10万左右")
        body = BODY_TEXT.get(data.get("body_type"), "车")
        out = []
        for i, t in enumerate(times):
            last = i == n - 1
            if status == "no_answer" or (i == 0 and rng.random() < 0.25):
                fu = {"method": "phone", "content": rng.choice(["首次致电无人接听，已发短信介绍车源并留下联系方式。",
                                                                "电话占线，稍后再拨仍未接通，已加微信待通过。"]),
                      "next_step": "明天上午再次致电。", "next_followup_at": t + timedelta(days=1)}
            elif last and status == "won":
                fu = {"method": "visit", "content": f"客户到店签约，{'按揭' if data.get('accepts_loan') else '全款'}成交{model}。",
                      "next_step": "1个工作日内将客户需求档案移交售后，办理过户并告知售后专员对接保养提醒。"}
            elif last and status == "defeated":
                fu = {"method": rng.choice(["phone", "wechat"]),
                      "content": "客户明确表示不再考虑本店车源，已标记战败，待填写战败客户信息采集表。",
                      "concerns": None}
            elif last and status == "invited":
                fu = {"method": "phone", "content": f"邀约客户到店看车{model}，时间已确认。",
                      "next_step": "提前整备车辆，准备同价位2-3台对比车源和第三方检测报告。",
                      "next_followup_at": datetime.fromisoformat(data["appointment_at"]) - timedelta(hours=2)}
            elif i == visit_at or (status == "visited" and last):
                fu = {"method": "visit", "content": f"客户到店看车并试驾{model}，对车况基本满意。",
                      "concerns": rng.choice(["价格比预期高，希望再优惠。", "担心是事故车，想看维修保养记录。",
                                              "想再对比另一家车商的同款。", "首付压力大，想了解低首付方案。"]),
                      "next_step": "向经理申请价格，两天内给客户答复。",
                      "next_followup_at": t + timedelta(days=2)}
            else:
                method, content = rng.choice([
                    ("phone", f"电话沟通需求：预算{budget}，偏好{body}，已约定微信发送车源资料。"),
                    ("wechat", f"微信发送{model}的实拍视频和第三方检测报告，客户问了车况和过户流程。"),
                    ("wechat", f"客户对{model}感兴趣，问能否视频看车，已安排视频讲解。"),
                    ("sms", "短信推送本周新到车源和到店体验邀请，客户回复会和家人商量。"),
                    ("moments", "朋友圈发布同价位新到车源，客户点赞并私信询价。"),
                ])
                fu = {"method": method, "content": content,
                      "concerns": rng.choice([None, "担心车况，怕是事故车、泡水车。", "价格高于竞品。", "想要车龄更新的。"]),
                      "next_step": "邀约客户周末到店看车。",
                      "next_followup_at": t + timedelta(days=rng.randint(2, 5))}
            fdata = {"lead": lead["key"], "followup_at": stamp(t), "method": fu["method"], "content": fu["content"]}
            if fu.get("concerns"):
                fdata["concerns"] = fu["concerns"]
            if fu.get("next_step"):
                fdata["next_step"] = fu["next_step"]
            if fu.get("next_followup_at"):
                fdata["next_followup_at"] = stamp(fu["next_followup_at"].replace(second=0, microsecond=0))
            lag = timedelta(minutes=rng.randint(3, 55) if rng.random() < 0.85 else rng.randint(70, 300))
            out.append({"form": "followup", "key": None, "owner": lead["owner"], "created_by": lead["owner"],
                        "created_at": min(t + lag, NOW), "data": fdata})
        return out

    def build_defeat(self, lead, followups):
        rng, ld = self.rng, lead["data"]
        last = followups[-1]["created_at"] if followups else lead["created_at"]
        captured = last + timedelta(hours=rng.uniform(0.5, 20) if rng.random() < 0.85 else rng.uniform(26, 60))
        captured = min(office(captured), NOW).replace(microsecond=0)
        weighted = [(k, v[0]) for k, v in REASONS.items()]
        reasons = [pick(rng, weighted)]
        for _ in range(rng.choice([0, 0, 1, 1, 2])):
            r = pick(rng, weighted)
            if r not in reasons:
                reasons.append(r)
        reasons = [k for k in REASONS if k in reasons]  # taxonomy order
        if "not_buying_now" in reasons:
            bought = False
        else:
            bought = rng.random() < (0.85 if "competitor" in reasons else 0.3 if "price" in reasons else 0.15)
        model = ld.get("intended_model") or lead["_model"]
        visits = [f["data"]["followup_at"][:10] for f in followups if f["data"]["method"] == "visit"]
        d = {"lead": lead["key"], "customer_name": ld["customer_name"], "phone": ld["phone"],
             "intended_model": model, "never_visited": not visits}
        if visits:
            d["first_visit_date"] = min(visits)
        d["followup_count"] = len(followups)
        d["reasons"] = reasons
        d["reason_notes"] = " ".join(rng.choice(REASONS[r][1]) for r in reasons)
        d["bought_other_car"] = bought
        if bought or "competitor" in reasons:
            body = ld.get("body_type") or "suv"
            pool = [m for m in CATALOG if m[2] == body and m[0] not in model]
            popular = [m for m in pool if m[0] == POPULAR_COMPETITOR.get(body)]
            series, variant = (popular or pool)[0][:2] if popular and rng.random() < 0.6 else rng.choice(pool)[:2]
            d["competitor_model"] = f"{rng.randint(2018, 2024)}款 {series} {variant}"
            if bought:
                low, high = BUDGET_PRICE.get(ld.get("budget"), (50000, 120000))
                d["competitor_price"] = rng.randrange(low // 100, high // 100) * 100
                d["competitor_plan"] = rng.choice(COMPETITOR_PLANS)
        if bought:
            nxt = captured.date() + timedelta(days=rng.randint(2 * 365, 5 * 365))
            strength = "low"
        elif "not_buying_now" in reasons:
            nxt = captured.date() + timedelta(days=rng.randint(90, 365))
            strength = rng.choice(["medium", "low"])
        else:
            nxt = captured.date() + timedelta(days=rng.randint(20, 180))
            strength = "high" if {"price", "finance_tradein", "delivery_time"} & set(reasons) else "medium"
        d["expected_next_purchase_date"] = nxt.isoformat()
        d["intent_strength"] = strength
        d["winback_angle"] = REASONS[reasons[0]][2]
        # grade and pools as the blueprint's grade_defeat rule would have set them at capture
        days_left = (nxt - captured.date()).days
        if (bought and days_left > 365) or ("sales_service" in reasons and strength == "low"):
            d["winback_grade"] = "low_potential"
        elif {"price", "finance_tradein", "delivery_time"} & set(reasons) and strength != "low" and days_left <= 180:
            d["winback_grade"] = "high_potential"
        else:
            d["winback_grade"] = "mid_term"
        pools = [p for p, why in (("price_watch", {"price", "finance_tradein"}), ("nurture", {"competitor"}),
                                  ("monthly_touch", {"not_buying_now"})) if why & set(reasons)]
        if pools:
            d["winback_pool"] = pools
        return {"form": "defeat", "key": None, "owner": lead["owner"], "created_by": lead["owner"],
                "created_at": captured, "data": d}

    def market_events(self):
        """A handful of events; the complaint names the competitor most customers were lost to."""
        lost_to = {}
        for dft in self.defeats:
            m = dft["data"].get("competitor_model", "")
            for series, *_ in CATALOG:
                if f" {series} " in m:
                    lost_to[series] = lost_to.get(series, 0) + 1
        top = max(sorted(lost_to), key=lambda k: lost_to[k]) if lost_to else "哈弗H6"
        rows = [
            (date(2026, 7, 8), "price_cut", "本田CR-V", "本店2021款 本田CR-V 240TURBO 降价8000元",
             "库存车限时降价，另送一年保养。"),
            (date(2026, 8, 20), "new_arrival", "比亚迪秦PLUS DM-i", "新到5台比亚迪秦PLUS DM-i 准新车",
             "2023-2024款，里程均在2万公里内，附第三方检测报告。"),
            (date(2026, 9, 28), "promotion", "全系车型", "国庆购车节：按揭低首付、置换补贴",
             "9月28日至10月7日，按揭首付低至两成，置换旧车补贴3000元。"),
            (date(2026, 11, 10), "competitor_complaint", top, f"{top} 车主集中投诉变速箱顿挫",
             f"多家汽车论坛和投诉平台出现{top}变速箱顿挫、异响的集中投诉，部分车主要求召回。"),
            (date(2026, 11, 18), "price_cut", "大众朗逸", "本店大众朗逸全系让利3000元", "限本月底前成交。"),
        ]
        out = []
        for i, (day, kind, model, title, desc) in enumerate(rows, 1):
            out.append({"form": "market_event", "key": f"event-{i:04d}", "owner": self.people.manager,
                        "created_by": self.people.manager, "created_at": at(day, 10),
                        "data": {"title": title, "event_type": kind, "model": model,
                                 "event_date": day.isoformat(), "description": desc}})
        return out

    # ------------------------------------------------------------ the whole set
    def build_leads(self):
        """The leads alone, keyed in order of arrival (the benchmark loads a million of these)."""
        rng = self.rng
        times = self.created_times()
        n_dupes = max(1, self.count // 25)
        dupe_slots = set(rng.sample(range(self.count // 3, self.count), n_dupes))
        for i, created in enumerate(times):
            original = None
            if i in dupe_slots:
                week_old = bisect.bisect_right(times, created - timedelta(days=7), hi=i)  # arrived a week before
                original = self.leads[rng.randrange(week_old)] if week_old else None
            lead = self.build_lead(created, original)
            self.leads.append(lead)
            if lead["data"]["status"] == "won":
                self.won.append(lead)
        self.leads.sort(key=lambda l: l["created_at"])
        for i, lead in enumerate(self.leads, 1):
            lead["key"] = f"lead-{i:06d}"
        return self.leads

    def run(self):
        self.build_leads()
        # Duplicate notes name their original's key, known only now.
        by_phone = {}
        for lead in self.leads:
            first = by_phone.setdefault(lead["data"]["phone"], lead)
            if first is not lead:
                lead["data"]["notes"] = f"同一手机号此前已从其他渠道登记过（{first['key']}）。"
        for lead in self.leads:
            fus = self.build_followups(lead)
            self.followups.extend(fus)
            if lead["data"]["status"] == "defeated":
                self.defeats.append(self.build_defeat(lead, fus))
            self.write_back(lead, fus)
        self.wake_ups()
        self.leave_gaps()
        self.defeats.sort(key=lambda r: r["created_at"])
        for i, r in enumerate(self.defeats, 1):
            r["key"] = f"defeat-{i:06d}"
        self.followups.sort(key=lambda r: (r["created_at"], r["data"]["lead"]))
        for i, r in enumerate(self.followups, 1):
            r["key"] = f"followup-{i:06d}"
        return {
            "leads.jsonl": self.leads,
            "defeats.jsonl": self.defeats,
            "followups.jsonl": self.followups,
            "market_events.jsonl": self.market_events(),
            "tasks.jsonl": self.open_tasks(),
        }

    # ------------------------------------------------------------ what the rules left behind
    # These use their own random stream, so the records above stay as they were.
    def write_back(self, lead, followups):
        """The lead's follow-up times, as the followup_recorded and first_followup rules set them."""
        lead["_followups"] = followups
        if not followups:
            return
        data, first, last = lead["data"], followups[0]["data"], followups[-1]["data"]
        data["first_followup_at"] = first["followup_at"]
        data["last_followup_at"] = last["followup_at"]
        if last.get("next_followup_at"):
            data["next_followup_at"] = last["next_followup_at"]

    def wake_ups(self):
        """Quarterly wake-ups of dormant customers (cadence_dormant) and the ones that came back
        within or after 30 days (dormant_reactivated), for the activation-rate KPI."""
        rng = self.extra
        for lead in self.leads:
            data = lead["data"]
            if data["status"] in ("won", "defeated"):
                continue
            age = (NOW - lead["created_at"]).days
            if data.get("customer_class") == "dormant":
                woken = NOW - timedelta(days=rng.uniform(1, 80))
                data["woken_at"] = stamp(woken.replace(hour=10, minute=0, second=0))
            elif age > 110 and data.get("customer_class") in ("potential", "intent") and rng.random() < 0.45:
                woken = lead["created_at"] + timedelta(days=rng.uniform(90, max(91, age - 6)))
                back = woken + timedelta(days=rng.uniform(1, 26) if rng.random() < 0.8 else rng.uniform(32, 60))
                data["woken_at"] = stamp(woken.replace(hour=10, minute=0, second=0))
                if back < NOW:
                    data["reactivated_at"] = stamp(office(back).replace(second=0, microsecond=0))
                else:  # woken, not back yet: still in the dormant pool
                    data["customer_class"] = "dormant"

    def leave_gaps(self):
        """Some capture forms are left incomplete at first (seed 001: complete within 24 hours)."""
        rng = self.extra
        for dft in self.defeats:
            if rng.random() < 0.12:
                dft["data"].pop("winback_angle", None)
                if rng.random() < 0.5:
                    dft["data"].pop("reason_notes", None)

    def open_tasks(self):
        """Open tasks the blueprint's rules would have left in the last days: follow-up plans for
        new leads, cadence touches by class, and overdue follow-ups to record."""
        out = []

        def task(lead, title, due, rule, priority="normal", created=None):
            out.append({"key": None, "created_at": created or due - timedelta(days=1),
                        "task": {"form": "lead", "record": lead["key"], "assignee": lead["owner"],
                                 "title": title, "due_at": due, "priority": priority, "rule": rule}})

        for lead in self.leads:
            data = lead["data"]
            if data["status"] in ("won", "defeated"):
                continue
            name, created = data["customer_name"], lead["created_at"]
            last = max((datetime.fromisoformat(f["data"]["followup_at"]) for f in lead["_followups"]), default=None)
            if NOW - created < timedelta(hours=24) and last is None:
                task(lead, f"为 {name} 制定跟进计划", created + timedelta(hours=24), "followup_plan_24h",
                     created=created)
            cadence = CADENCE.get(data.get("customer_class"))
            if cadence:
                period, title, rule = cadence
                k = int((NOW - created) / period)
                fired = created + k * period
                if k >= 1 and NOW - fired < timedelta(days=2) and (last is None or last < fired):
                    task(lead, title.format(name=name), fired + timedelta(days=1), rule, created=fired)
            planned = datetime.fromisoformat(data["next_followup_at"]) if data.get("next_followup_at") else None
            if planned and planned + timedelta(hours=1) <= NOW < planned + timedelta(days=3) \
                    and (last is None or last < planned):
                task(lead, f"补录跟进：{name}", planned + timedelta(hours=3), "followup_overdue", "high",
                     created=planned + timedelta(hours=1))
        for dft in self.defeats:  # captures still incomplete a day later (defeat_capture_24h)
            d, captured = dft["data"], dft["created_at"]
            if timedelta(hours=24) <= NOW - captured < timedelta(days=3) and incomplete(d):
                out.append({"key": None, "created_at": captured + timedelta(hours=24),
                            "task": {"form": "defeat", "record": dft["key"], "assignee": dft["owner"],
                                     "title": f"补全战败信息采集表：{d['customer_name']}",
                                     "due_at": captured + timedelta(hours=28), "priority": "high",
                                     "rule": "defeat_capture_24h"}})
        out.sort(key=lambda t: (t["task"]["due_at"], t["task"]["record"]))
        for i, t in enumerate(out, 1):
            t["key"] = f"task-{i:06d}"
            t["task"]["due_at"] = stamp(t["task"]["due_at"])
        return out


def incomplete(d):
    """A defeat capture the defeat_capture_24h rule would still find incomplete."""
    return (not d.get("reason_notes") or not d.get("expected_next_purchase_date") or not d.get("winback_angle")
            or (d.get("bought_other_car") and not (d.get("competitor_model") and d.get("competitor_price")))
            or (not d.get("never_visited") and not d.get("first_visit_date")))


def write(records, path):
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for r in records:
            fh.write(json.dumps(line(r), ensure_ascii=False) + "\n")


def line(r):
    """One demo line: a record, or an open task."""
    if "task" in r:
        return {"key": r["key"], "created_at": stamp(r["created_at"]), "task": r["task"]}
    row = {k: r[k] for k in ("form", "key", "owner", "created_by")}
    row["created_at"] = stamp(r["created_at"])
    row["data"] = r["data"]
    return row


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=120, help="number of leads (default 120)")
    parser.add_argument("--seed", type=int, default=2022, help="random seed (default 2022)")
    parser.add_argument("--out", type=Path, default=BLUEPRINT / "demo", help="output folder")
    args = parser.parse_args(argv)
    if args.count < 1:
        parser.error("--count must be at least 1")
    files = Generator(args.count, args.seed).run()
    args.out.mkdir(parents=True, exist_ok=True)
    for name, records in files.items():
        write(records, args.out / name)
        print(f"{args.out / name}: {len(records)} records")


if __name__ == "__main__":
    main()
